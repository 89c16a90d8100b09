import { reduce, type TopAction, type TopState } from "./TopState.js"

/**
 * Holds the dashboard's state. Actions apply at once; listeners (the ink app) hear about changes at
 * most once per `minIntervalMs`, so a burst of events costs one redraw.
 */
export interface TopStore {
  /** The current state (every action applied). */
  readonly get: () => TopState
  /** The state as of the last notification: what the app draws. */
  readonly rendered: () => TopState
  readonly dispatch: (action: TopAction) => void
  readonly update: (f: (state: TopState) => TopState) => void
  readonly subscribe: (listener: () => void) => () => void
  readonly close: () => void
}

export const makeStore = (initial: TopState, minIntervalMs = 100): TopStore => {
  let state = initial
  let rendered = initial
  let lastFlush = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  const listeners = new Set<() => void>()
  // Date.now: the store throttles renders with setTimeout, outside Effect
  const flush = () => {
    timer = undefined
    lastFlush = Date.now()
    if (rendered === state) return
    rendered = state
    for (const l of listeners) l()
  }
  const schedule = () => {
    if (timer !== undefined) return
    timer = setTimeout(flush, Math.max(0, lastFlush + minIntervalMs - Date.now())) // Date.now: as in flush
  }
  const update = (f: (s: TopState) => TopState) => {
    const next = f(state)
    if (next === state) return
    state = next
    schedule()
  }
  return {
    get: () => state,
    rendered: () => rendered,
    dispatch: (action) => update((s) => reduce(s, action)),
    update,
    subscribe: (listener) => {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    close: () => {
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      listeners.clear()
    }
  }
}
