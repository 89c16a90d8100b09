import type { Task } from "../domain/Task.js"
import type { TopState } from "./TopState.js"
import { ago, fit, oneLine, statusLabel } from "./TopView.js"

/** The lines of a task's detail pane: what it is, how it went, and the tail of its output. */

const clock = (ms: number | null) => (ms === null ? "-" : new Date(ms).toISOString().slice(11, 19))

const took = (t: Task) => (t.finishedAt !== null && t.startedAt !== null ? ` (took ${ago(t.startedAt, t.finishedAt)})` : "")

const json = (value: unknown): string => {
  if (typeof value === "string") return value
  try {
    return JSON.stringify(value, null, 1) ?? ""
  } catch {
    return String(value)
  }
}

/** Up to `max` lines of `text`, each cut to `width` (the last ones when `tail`). */
const block = (label: string, text: string, width: number, max: number, tail = false): ReadonlyArray<string> => {
  if (max <= 0) return []
  const lines = text.split("\n").map((l) => l.replace(/\t/g, "  ").replace(/[\x00-\x08\x0b-\x1f\x7f]/g, ""))
  const chosen = tail ? lines.slice(-max) : lines.slice(0, max)
  const more = lines.length - chosen.length
  return [`${label}${more > 0 ? ` (${more} more line${more === 1 ? "" : "s"})` : ""}:`, ...chosen.map((l) => fit(`  ${l}`, width))]
}

const resultText = (t: Task): string => {
  const r = t.result as { stdout?: unknown; stderr?: unknown; exitCode?: unknown; text?: unknown } | null
  if (r !== null && typeof r === "object") {
    const parts = [
      typeof r.stdout === "string" ? r.stdout.trimEnd() : "",
      typeof r.stderr === "string" && r.stderr !== "" ? `stderr: ${r.stderr.trimEnd()}` : "",
      typeof r.text === "string" ? r.text : ""
    ].filter((p) => p !== "")
    if (parts.length > 0) return (typeof r.exitCode === "number" ? `exit ${r.exitCode}\n` : "") + parts.join("\n")
  }
  return json(t.result)
}

/** The command or prompt of a payload as it is written, and its other fields on one line. */
const payloadParts = (payload: unknown): { readonly text: string; readonly rest: string } => {
  if (typeof payload === "object" && payload !== null && !Array.isArray(payload)) {
    const { command, prompt, ...rest } = payload as { command?: unknown; prompt?: unknown }
    const text = typeof command === "string" ? command : typeof prompt === "string" ? prompt : undefined
    if (text !== undefined) return { text, rest: Object.keys(rest).length === 0 ? "" : oneLine(json(rest)) }
  }
  return { text: json(payload), rest: "" }
}

export const detailLines = (state: TopState, task: Task, width: number, height: number): ReadonlyArray<string> => {
  const worker = task.workerId === null ? "-" : `${state.workers.find((w) => w.id === task.workerId)?.name ?? "?"} (${task.workerId})`
  const project = state.projects.find((p) => p.id === task.projectId)?.name ?? task.projectId
  const running = task.status === "leased" && task.startedAt !== null ? ` (running ${ago(task.startedAt, state.now)})` : ""
  const head = [
    `#${task.seq} ${task.kind} ${statusLabel(task.status)}${task.suspect ? " SUSPECT" : ""}  ${task.id}  project ${project}`,
    `attempts ${task.attempts}/${task.maxAttempts}  priority ${task.priority}  worker ${worker}`,
    `created ${clock(task.createdAt)}  started ${clock(task.startedAt)}${running}  finished ${clock(task.finishedAt)}${took(task)}`,
    ...(task.dependsOn.length === 0 ? [] : [`depends on ${task.dependsOn.join(" ")}`])
  ]
  const history = task.history.map(
    (a) => `  attempt ${a.attempt} ${a.outcome} on ${a.workerId ?? "-"} at ${clock(a.endedAt)}${a.error === null ? "" : `: ${oneLine(a.error)}`}`
  )
  const output = state.output.get(task.id)
  let room = height - head.length
  const sections: Array<ReadonlyArray<string>> = [head]
  const add = (label: string, text: string, share: number, tail = false) => {
    const lines = block(label, text, width, Math.min(room - 1, Math.max(1, share)), tail)
    room -= lines.length
    sections.push(lines)
  }
  const { text: payloadText, rest } = payloadParts(task.payload)
  if (rest !== "") sections[0] = [...head, fit(`options ${rest}`, width)]
  room -= rest === "" ? 0 : 1
  add("payload", payloadText, Math.floor(room / 4))
  if (task.error !== null) add(task.status === "done" ? "last error" : "error", task.error, 2)
  if (history.length > 0 && room > 1) {
    const shown = history.slice(-Math.min(room - 1, 3))
    sections.push([`history (${history.length} without success):`, ...shown.map((l) => fit(l, width))])
    room -= shown.length + 1
  }
  if (output !== undefined && output !== "") add("output (tail)", output, room - (task.result === null ? 0 : Math.floor(room / 2)), true)
  if (task.result !== null && room > 1) add("result", resultText(task), room)
  return sections
    .flat()
    .slice(0, height)
    .map((l) => fit(l, width))
}
