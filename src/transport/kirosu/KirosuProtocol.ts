import { ParseResult } from "effect"
import type { KirosuStats, KirosuStatus, KirosuTask } from "../../domain/Kirosu.js"
import type { Task, TaskStatus } from "../../domain/Task.js"

/**
 * The Kirosu wire format as plain functions: reading a request line, writing a reply line, and
 * showing Kiris tasks the way Kirosu clients expect them. Lines are framed by transport/Ndjson.ts.
 */

// == requests and replies

export interface KirosuRequest {
  readonly id: unknown
  readonly method: string
  readonly params: Readonly<Record<string, unknown>>
}

export type Parsed =
  | { readonly _tag: "Blank" }
  | { readonly _tag: "Invalid"; readonly id: unknown; readonly message: string }
  | { readonly _tag: "Request"; readonly request: KirosuRequest }

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** Reads one line. Surrounding whitespace (including `\r`) is ignored; a blank line gets no reply. */
export const parseLine = (line: string): Parsed => {
  const text = line.trim()
  if (text === "") return { _tag: "Blank" }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    return { _tag: "Invalid", id: null, message: `Invalid JSON: ${(e as Error).message}` }
  }
  if (!isRecord(value)) return { _tag: "Invalid", id: null, message: "Invalid request: expected a JSON object" }
  const id = value.id === undefined ? null : value.id
  if (typeof value.method !== "string") return { _tag: "Invalid", id, message: "Invalid request: method must be a string" }
  const params = value.params
  if (params !== undefined && params !== null && !isRecord(params)) {
    return { _tag: "Invalid", id, message: "Invalid request: params must be an object" }
  }
  return { _tag: "Request", request: { id, method: value.method, params: params ?? {} } }
}

/** One reply line: exactly `id`, `result`, `error`, in that order. */
export const encodeReply = (id: unknown, outcome: { readonly result: object } | { readonly error: string }): string =>
  JSON.stringify({
    id: id === undefined ? null : id,
    result: "result" in outcome ? outcome.result : null,
    error: "error" in outcome ? { message: outcome.error } : null
  }) + "\n"

/** A params decoding failure as one message naming the offending param(s). */
export const describeParamError = (error: ParseResult.ParseError): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const parts = issues.map((issue) => {
    const name = issue.path.map(String).join(".")
    if (issue._tag === "Missing") return `Missing required param: ${name}`
    return name === "" ? `Invalid params: ${issue.message}` : `Invalid param ${name}: ${issue.message}`
  })
  return [...new Set(parts)].join("; ")
}

// == tasks

/** Kiris statuses shown as Kirosu's four: waiting and input_required (a human task)→queued, dead and cancelled→failed. */
export const kirosuStatus = (status: TaskStatus): KirosuStatus => {
  switch (status) {
    case "waiting":
    case "queued":
    case "input_required":
      return "queued"
    case "leased":
      return "leased"
    case "done":
      return "done"
    case "failed":
    case "dead":
    case "cancelled":
      return "failed"
  }
}

/** The Kiris statuses a Kirosu `list {status}` filter selects; none for an unknown status. */
export const kirisStatuses = (status: string): ReadonlyArray<TaskStatus> => {
  switch (status.trim().toLowerCase()) {
    case "queued":
      return ["waiting", "queued", "input_required"]
    case "leased":
      return ["leased"]
    case "done":
      return ["done"]
    case "failed":
      return ["failed", "dead", "cancelled"]
    default:
      return []
  }
}

const field = (payload: unknown, key: string): string | undefined =>
  isRecord(payload) && typeof payload[key] === "string" ? (payload[key] as string) : undefined

/** The text a Kirosu agent runs: the chat prompt, the python/shell command, or the payload as JSON. */
export const promptOf = (payload: unknown): string =>
  field(payload, "prompt") ?? field(payload, "command") ?? field(payload, "code") ?? JSON.stringify(payload ?? null)

/** Kirosu results are text: strings as they are, chat `{text}` and process `{stdout}` results by that text, anything else as JSON. */
export const resultText = (result: unknown): string | null => {
  if (result === null || result === undefined) return null
  if (typeof result === "string") return result
  return field(result, "text") ?? field(result, "stdout") ?? JSON.stringify(result)
}

const seconds = (ms: number) => ms / 1000

/** A Kiris task as Kirosu shows it; an approved `human` task shows worker `human`. */
export const toKirosuTask = (task: Task): KirosuTask => {
  const status = kirosuStatus(task.status)
  return {
    task_id: task.seq,
    prompt: promptOf(task.payload),
    system_prompt: field(task.payload, "system") ?? null,
    type: task.kind,
    status,
    created_at: seconds(task.createdAt),
    updated_at: seconds(task.updatedAt),
    leased_until: task.status === "leased" && task.leaseExpiresAt !== null ? seconds(task.leaseExpiresAt) : null,
    worker_id: task.workerId ?? (task.kind === "human" && task.status === "done" ? "human" : null),
    result: resultText(task.result),
    error: task.status === "cancelled" ? (task.error ?? "cancelled") : task.error
  }
}

const round2 = (n: number) => Math.round(n * 100) / 100

/** What the stats are computed from: counts per Kirosu status and the finished `done` tasks. */
export interface StatsInput {
  readonly counts: Readonly<Record<KirosuStatus, number>>
  /** Sum and count of (finish − creation) in ms over done tasks. */
  readonly doneDurationMsSum: number
  readonly doneWithDuration: number
  readonly completedLastHour: number
}

export const toKirosuStats = (input: StatsInput): KirosuStats => {
  const { done, failed, leased, queued } = input.counts
  return {
    queued,
    leased,
    done,
    failed,
    total_tasks: queued + leased + done + failed,
    completed_last_hour: input.completedLastHour,
    avg_completion_time_sec: input.doneWithDuration > 0 ? round2(input.doneDurationMsSum / input.doneWithDuration / 1000) : 0.0,
    error_rate_percent: done + failed > 0 ? round2((failed / (done + failed)) * 100) : 0.0
  }
}
