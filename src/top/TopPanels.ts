import { Box, Text } from "ink"
import React from "react"
import { HELP } from "./TopKeys.js"
import type { TopState } from "./TopState.js"
import {
  ago,
  fit,
  formatRate,
  kindCounts,
  oneLine,
  payloadLine,
  ratePerSecond,
  selectedIndex,
  selectedWorker,
  sparkline,
  statusCounts,
  statusLabel,
  throughput,
  visibleTasks
} from "./TopView.js"

/** The dashboard's panels. Every line is cut to its panel's width, so nothing wraps or overflows. */

const h = React.createElement

export interface PanelProps {
  readonly state: TopState
  readonly width: number
  readonly height: number
}

/** One line of text, exactly `width` columns. */
export const line = (
  text: string,
  width: number,
  props: {
    readonly key?: string | number
    readonly inverse?: boolean
    readonly color?: string
    readonly bold?: boolean
    readonly dimColor?: boolean
  } = {}
) => h(Text, { wrap: "truncate", ...props }, fit(text, width, true))

const panel = (width: number, height: number, focused: boolean, children: ReadonlyArray<React.ReactNode>) =>
  h(Box, { flexDirection: "column", width, height, borderStyle: "single", borderColor: focused ? "cyan" : "gray", overflow: "hidden" }, ...children)

/** Words packed into at most `lines` lines of `width` columns. */
const packWith = (words: ReadonlyArray<string>, width: number, gap: string): Array<string> => {
  const out: Array<string> = []
  let current = ""
  for (const w of words) {
    if (current !== "" && current.length + gap.length + w.length > width) {
      out.push(current)
      current = ""
    }
    current = current === "" ? w : `${current}${gap}${w}`
  }
  if (current !== "") out.push(current)
  return out
}

/** Words packed into at most `lines` lines of `width` columns (closer together when that saves a line). */
const pack = (words: ReadonlyArray<string>, width: number, lines: number): ReadonlyArray<string> => {
  const wide = packWith(words, width, "  ")
  const narrow = packWith(words, width, " ")
  return (narrow.length < wide.length ? narrow : wide).slice(0, lines)
}

const statusColor = (status: string) =>
  status === "done"
    ? "green"
    : status === "leased"
      ? "cyan"
      : status === "failed" || status === "dead"
        ? "red"
        : status === "cancelled"
          ? "gray"
          : "yellow"

export const QueuePanel = ({ state, width, height }: PanelProps) => {
  const inner = width - 2
  const rows = height - 2
  const counts = statusCounts(state)
  const countLines =
    counts.length === 0
      ? ["loading…"]
      : pack(
          counts.map(([label, n]) => `${label} ${n}`),
          inner,
          Math.max(1, rows - 2)
        )
  const byKind = kindCounts(state)
  const kindLines = pack(
    byKind.length === 0 ? [] : ["open/run/done/fail:", ...byKind.map((k) => `${k.kind} ${k.open}/${k.running}/${k.done}/${k.failed}`)],
    inner,
    Math.max(0, rows - countLines.length - 1)
  )
  const rate = `${formatRate(ratePerSecond(state))} done/s`
  const spark = sparkline(throughput(state, Math.max(1, inner - rate.length - 1)))
  return panel(width, height, false, [
    ...countLines.map((l, i) => line(l, inner, { key: `c${i}` })),
    ...kindLines.map((l, i) => line(l, inner, { key: `k${i}`, dimColor: true })),
    h(Box, { key: "spark", flexGrow: 1, alignItems: "flex-end" }, line(`${spark} ${rate}`, inner, { color: "green" }))
  ])
}

export const WorkersPanel = ({ state, width, height }: PanelProps) => {
  const inner = width - 2
  const focused = state.focus === "workers"
  if (state.workers.length === 0) return panel(width, height, focused, [line("no workers", inner, { key: "none", dimColor: true })])
  const selected = selectedWorker(state)
  const rows = height - 3
  const index = Math.max(
    0,
    state.workers.findIndex((w) => w.id === selected?.id)
  )
  const start = Math.max(0, Math.min(index - rows + 1, state.workers.length - rows))
  const shown = state.workers.slice(start, start + rows)
  const nameW = Math.max(6, Math.min(12, Math.floor(inner / 3)))
  const kindsW = Math.max(1, inner - nameW - 13)
  const row = (mark: string, name: string, kinds: string, slots: string, seen: string) =>
    `${mark}${fit(name, nameW, true)} ${fit(kinds, kindsW, true)} ${fit(slots, 5, true)} ${seen}`
  return panel(width, height, focused, [
    line(row(" ", "worker", "kinds", "run", "seen"), inner, { key: "head", dimColor: true }),
    ...shown.map((w) => {
      const mark = focused && w.id === selected?.id ? "›" : " "
      const text = row(mark, w.name, w.kinds.join(","), `${w.inFlight}/${w.capacity}`, w.connected ? ago(w.lastSeenAt, state.now) : "gone")
      return line(text, inner, { key: w.id, inverse: focused && w.id === selected?.id, ...(w.connected ? {} : { dimColor: true }) })
    })
  ])
}

export const TasksPanel = ({ state, width, height }: PanelProps) => {
  const inner = width - 2
  const pageRows = Math.max(1, height - 3)
  const list = visibleTasks(state)
  const index = selectedIndex(state, list)
  const page = Math.floor(index / pageRows)
  const pages = Math.max(1, Math.ceil(list.length / pageRows))
  const filters = [
    state.statusFilter === null ? "" : `status:${statusLabel(state.statusFilter)}`,
    state.kindFilter === null ? "" : `kind:${state.kindFilter}`,
    state.textFilter === "" && !state.typing ? "" : `/${state.textFilter}`
  ].filter((f) => f !== "")
  const title = `Tasks ${list.length}${filters.length === 0 ? "" : ` (${filters.join(" ")})`}  page ${page + 1}/${pages}`
  const focused = state.focus === "tasks"
  const rows = list.slice(page * pageRows, (page + 1) * pageRows).map((t) => {
    const mark = t.id === list[index]?.id ? "›" : " "
    const head = `${mark}${fit(`#${t.seq}`, 6, true)} ${fit(t.kind, 6, true)} ${fit(statusLabel(t.status), 9, true)} ${fit(ago(t.createdAt, state.now), 4, true)} ${fit(t.workerId === null ? "-" : (state.workers.find((w) => w.id === t.workerId)?.name ?? t.workerId), 10, true)} `
    return line(head + payloadLine(t.payload), inner, { key: t.id, inverse: focused && t.id === list[index]?.id, color: statusColor(t.status) })
  })
  return panel(width, height, focused, [
    line(title, inner, { key: "title", bold: true }),
    ...(rows.length === 0
      ? [line(state.tasks.size === 0 ? "no tasks yet" : "no task matches the filters", inner, { key: "none", dimColor: true })]
      : rows)
  ])
}

export const SessionsPanel = ({ state, width, height }: PanelProps) => {
  const inner = width - 2
  const rows = height - 3
  const project = (id: string) => state.projects.find((p) => p.id === id)?.name ?? id
  const sorted = [...state.sessions].sort((a, b) => (a.status === b.status ? b.updatedAt - a.updatedAt : a.status === "running" ? -1 : 1))
  const running = sorted.filter((s) => s.status === "running").length
  return panel(width, height, true, [
    line(`Sessions ${sorted.length} (${running} running)`, inner, { key: "title", bold: true }),
    ...(sorted.length === 0 ? [line("no sessions", inner, { key: "none", dimColor: true })] : []),
    ...sorted
      .slice(0, rows)
      .map((s) =>
        line(
          `${fit(project(s.projectId), 12, true)} ${fit(s.status, 7, true)} ${fit(ago(s.updatedAt, state.now), 4, true)} ${fit(s.agent, 8, true)} ${s.title === "" ? s.id : s.title}`,
          inner,
          { key: s.id, ...(s.status === "running" ? { color: "cyan" } : {}) }
        )
      )
  ])
}

export const InboxPanel = ({ state, width, height }: PanelProps) => {
  const inner = width - 2
  const rows = Math.max(1, height - 3)
  const project = (id: string) => state.projects.find((p) => p.id === id)?.name ?? id
  const selected = Math.min(state.inboxSelected, state.inbox.length - 1)
  const start = Math.max(0, Math.min(selected - rows + 1, state.inbox.length - rows))
  return panel(width, height, true, [
    line(`Inbox ${state.inbox.length} waiting  (a approve · x reject)`, inner, { key: "title", bold: true }),
    ...(state.inbox.length === 0 ? [line("nothing waits for an answer", inner, { key: "none", dimColor: true })] : []),
    ...state.inbox
      .slice(start, start + rows)
      .map((item, i) =>
        line(
          `${fit(item.kind === "permission" ? "permission" : "human", 10, true)} ${fit(project(item.projectId), 12, true)} ${fit(ago(item.createdAt, state.now), 4, true)} ${oneLine(item.title)}`,
          inner,
          { key: item.id, inverse: start + i === selected }
        )
      )
  ])
}

export const HelpPanel = ({ width, height }: PanelProps) => {
  const inner = width - 2
  const keyW = Math.min(16, Math.floor(inner / 3))
  return panel(width, height, true, [
    line("Keys (any key closes this help)", inner, { key: "title", bold: true }),
    ...HELP.slice(0, height - 3).map(([k, what]) => line(`${fit(k, keyW, true)} ${what}`, inner, { key: k }))
  ])
}
