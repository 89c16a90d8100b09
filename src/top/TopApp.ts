import { Box, useApp, useInput, useStdout } from "ink"
import React, { useEffect, useState, useSyncExternalStore } from "react"
import { detailLines } from "./TopDetail.js"
import type { TopFeed } from "./TopFeed.js"
import { confirmText, onKey } from "./TopKeys.js"
import { HelpPanel, InboxPanel, line, QueuePanel, SessionsPanel, TasksPanel, WorkersPanel } from "./TopPanels.js"
import type { TopState } from "./TopState.js"
import type { TopStore } from "./TopStore.js"
import { fit, selectedTask } from "./TopView.js"

/** `kiris top`'s ink app: header, queue and workers, the main pane (tasks, detail, sessions, help), status bar. */

const h = React.createElement

export interface TopAppProps {
  readonly store: TopStore
  readonly feed: TopFeed
  /** The terminal's size when fixed (tests); by default the real one, following resizes. */
  readonly columns?: number
  readonly rows?: number
  /** Called when the user quits, before the app unmounts. */
  readonly onExit?: () => void
}

const MIN_WIDTH = 40
const MIN_HEIGHT = 12

/**
 * The size to draw at, following resizes: the terminal's width, and one row less than its height
 * (a frame as tall as the terminal would make ink clear the screen on every redraw).
 */
const useTerminalSize = (fixed: { readonly columns?: number | undefined; readonly rows?: number | undefined }) => {
  const { stdout } = useStdout()
  const read = () => ({ width: fixed.columns ?? stdout.columns ?? 80, height: (fixed.rows ?? stdout.rows ?? 24) - 1 })
  const [size, setSize] = useState(read)
  useEffect(() => {
    const onResize = () => setSize(read())
    stdout.on("resize", onResize)
    return () => {
      stdout.off("resize", onResize)
    }
  }, [stdout, fixed.columns, fixed.rows])
  return size
}

const Header = ({ state, width }: { readonly state: TopState; readonly width: number }) => {
  const tabs = (["tasks", "sessions", "inbox"] as const)
    .map((v, i) => {
      const label = `${i + 1} ${v}${v === "inbox" && state.inbox.length > 0 ? ` ${state.inbox.length}` : ""}`
      return state.view === v || (v === "tasks" && state.view === "detail") ? `[${label}]` : label
    })
    .join(" ")
  const connection = state.connection === "live" ? "● live" : state.connection === "connecting" ? "connecting…" : "reconnecting…"
  // the hub address comes last: it is what gets cut on a narrow terminal
  const left = `kiris top  ${tabs}  ${state.hub}`
  const right = `${connection}  ? help  q quit`
  return line(`${fit(left, Math.max(0, width - right.length - 1), true)} ${right}`, width, {
    bold: true,
    ...(state.connection === "live" ? {} : { color: "yellow" })
  })
}

const StatusBar = ({ state, width }: { readonly state: TopState; readonly width: number }) => {
  if (state.typing) return line(`/${state.textFilter}▏  (Enter keeps the filter, Esc clears it)`, width, { color: "cyan" })
  if (state.confirm !== null) return line(confirmText(state.confirm), width, { color: "yellow", bold: true })
  if (state.message !== null) return line(state.message.text, width, state.message.error ? { color: "red" } : { color: "green" })
  if (state.connection === "reconnecting") return line("reconnecting…", width, { color: "yellow" })
  return line("Enter detail  / filter  s k filters  c cancel  r retry  a x answer  Tab d drain", width, { dimColor: true })
}

const Main = ({ state, width, height }: { readonly state: TopState; readonly width: number; readonly height: number }) => {
  if (state.help) return h(HelpPanel, { state, width, height })
  if (state.view === "sessions") return h(SessionsPanel, { state, width, height })
  if (state.view === "inbox") return h(InboxPanel, { state, width, height })
  if (state.view === "detail") {
    const task = selectedTask(state)
    const inner = width - 2
    const lines = task === undefined ? ["this task is no longer known (Esc goes back)"] : detailLines(state, task, inner, height - 2)
    return h(
      Box,
      { flexDirection: "column", width, height, borderStyle: "single", borderColor: "cyan", overflow: "hidden" },
      ...lines.map((l, i) => line(l, inner, { key: i, ...(i === 0 ? { bold: true } : {}) }))
    )
  }
  return h(TasksPanel, { state, width, height })
}

export const TopApp = ({ store, feed, columns, rows, onExit }: TopAppProps) => {
  const state = useSyncExternalStore(store.subscribe, store.rendered)
  const size = useTerminalSize({ columns, rows })
  const { exit } = useApp()
  const W = Math.max(MIN_WIDTH, size.width)
  const H = Math.max(MIN_HEIGHT, size.height)
  const topH = H >= 34 ? 10 : H >= 28 ? 8 : 6
  const mainH = H - topH - 2
  useInput((input, key) => {
    const outcome = onKey(store.get(), input, key, Math.max(1, mainH - 3))
    store.update(() => outcome.state)
    if (outcome.run !== undefined) feed.perform(outcome.run)
    if (outcome.opened !== undefined) feed.refreshTask(outcome.opened)
    if (outcome.quit) {
      onExit?.()
      exit()
    }
  })
  const queueW = Math.floor(W / 2)
  return h(
    Box,
    { flexDirection: "column", width: W, height: H, overflow: "hidden" },
    h(Header, { state, width: W }),
    h(
      Box,
      { flexDirection: "row", height: topH },
      h(QueuePanel, { state, width: queueW, height: topH }),
      h(WorkersPanel, { state, width: W - queueW, height: topH })
    ),
    h(Main, { state, width: W, height: mainH }),
    h(StatusBar, { state, width: W })
  )
}
