import { type Task, TaskKind, TaskStatus } from "../domain/Task.js"
import { type TopState, WINDOW_MS } from "./TopState.js"

/** Pure derivations of a `TopState` for drawing: the filtered task list, counts, the sparkline, text fitting. */

export const statuses: ReadonlyArray<string> = TaskStatus.literals
export const kinds: ReadonlyArray<string> = TaskKind.literals

/** A short, one-line description of a payload (the command, the prompt, or its JSON). */
export const payloadLine = (payload: unknown): string => {
  if (typeof payload === "object" && payload !== null) {
    const p = payload as { command?: unknown; prompt?: unknown; code?: unknown }
    for (const v of [p.command, p.prompt, p.code]) if (typeof v === "string") return oneLine(v)
  }
  return oneLine(payload === undefined ? "" : (JSON.stringify(payload) ?? ""))
}

export const oneLine = (s: string) => s.replace(/\s+/g, " ").trim()

/** `s` cut to `width` columns with `…`, padded with spaces to exactly `width` when `pad`. */
export const fit = (s: string, width: number, pad = false): string => {
  if (width <= 0) return ""
  const chars = [...s]
  const cut = chars.length > width ? chars.slice(0, Math.max(0, width - 1)).join("") + "…" : s
  return pad ? cut + " ".repeat(Math.max(0, width - [...cut].length)) : cut
}

/** `3s`, `4m`, `2h`, `5d` from `from` to `to`. */
export const ago = (from: number | null, to: number): string => {
  if (from === null) return "-"
  const s = Math.max(0, Math.round((to - from) / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  if (s < 86_400) return `${Math.floor(s / 3600)}h`
  return `${Math.floor(s / 86_400)}d`
}

const matchesText = (t: Task, text: string) => {
  if (text === "") return true
  const needle = text.toLowerCase()
  return [t.id, `#${t.seq}`, t.kind, t.status, t.workerId ?? "", payloadLine(t.payload), t.error ?? ""].some((f) => f.toLowerCase().includes(needle))
}

/** The tasks the list shows, newest first, after the status, kind and text filters. */
export const visibleTasks = (state: TopState): ReadonlyArray<Task> =>
  [...state.tasks.values()]
    .filter(
      (t) =>
        (state.statusFilter === null || t.status === state.statusFilter) &&
        (state.kindFilter === null || t.kind === state.kindFilter) &&
        matchesText(t, state.textFilter)
    )
    .sort((a, b) => b.seq - a.seq)

/** The selected task's index in `list` (0 when it is not there). */
export const selectedIndex = (state: TopState, list: ReadonlyArray<Task>): number => {
  const i = state.selectedId === null ? -1 : list.findIndex((t) => t.id === state.selectedId)
  return i < 0 ? 0 : i
}

export const selectedTask = (state: TopState): Task | undefined => {
  if (state.view === "detail" && state.detailId !== null) return state.tasks.get(state.detailId)
  const list = visibleTasks(state)
  return list[selectedIndex(state, list)]
}

export const selectedWorker = (state: TopState) => state.workers[Math.min(state.workerSelected, state.workers.length - 1)]

/** Known tasks by kind and status (from the tasks the dashboard holds, not the whole history). */
export const kindCounts = (
  state: TopState
): ReadonlyArray<{ readonly kind: string; readonly open: number; readonly running: number; readonly done: number; readonly failed: number }> => {
  const rows = new Map<string, { kind: string; open: number; running: number; done: number; failed: number }>()
  for (const t of state.tasks.values()) {
    const row = rows.get(t.kind) ?? { kind: t.kind, open: 0, running: 0, done: 0, failed: 0 }
    if (t.status === "leased") row.running += 1
    else if (t.status === "done") row.done += 1
    else if (t.status === "failed" || t.status === "dead") row.failed += 1
    else if (t.status !== "cancelled") row.open += 1
    rows.set(t.kind, row)
  }
  return [...rows.values()].sort((a, b) => b.open + b.running - (a.open + a.running) || a.kind.localeCompare(b.kind))
}

const BARS = "▁▂▃▄▅▆▇█"

/** Completions per time slot over the last minute, oldest first, in `width` slots. */
export const throughput = (state: TopState, width: number): ReadonlyArray<number> => {
  const slots = Array.from({ length: Math.max(1, width) }, () => 0)
  const slotMs = WINDOW_MS / slots.length
  for (const at of state.completions.values()) {
    const age = state.now - at
    if (age < 0 || age >= WINDOW_MS) continue
    const index = slots.length - 1 - Math.floor(age / slotMs)
    slots[index] = (slots[index] ?? 0) + 1
  }
  return slots
}

export const sparkline = (values: ReadonlyArray<number>): string => {
  const max = Math.max(0, ...values)
  return values.map((v) => (v === 0 ? " " : BARS[Math.min(BARS.length - 1, Math.ceil((v / max) * BARS.length) - 1)])).join("")
}

/** Completions per second, averaged over the last minute. */
export const ratePerSecond = (state: TopState): number => {
  let n = 0
  for (const at of state.completions.values()) if (state.now - at < WINDOW_MS && at <= state.now) n += 1
  return n / (WINDOW_MS / 1000)
}

export const formatRate = (r: number) => (r >= 10 ? r.toFixed(0) : r.toFixed(r === 0 ? 0 : 2))

/** `running` for `leased`: what people expect to read. */
export const statusLabel = (status: string) => (status === "leased" ? "running" : status === "input_required" ? "input" : status)

/** The status counts the queue panel shows, in lifecycle order. */
export const statusCounts = (state: TopState): ReadonlyArray<readonly [string, number]> =>
  state.counts === null ? [] : statuses.map((s) => [statusLabel(s), state.counts?.[s] ?? 0] as const)
