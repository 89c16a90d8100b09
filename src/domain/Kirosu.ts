import { ParseResult, Schema } from "effect"

/**
 * The Kirosu hub protocol (newline-delimited JSON over TCP), spoken by `kiris serve --kirosu-port`
 * so that existing Kirosu agents and clients work against a Kiris hub. These schemas describe the
 * wire: request params (decoded leniently, extra keys ignored) and the objects in replies.
 */

/** A failed request: the reply carries `{"message": ...}` and the connection stays open. */
export class KirosuError extends Schema.TaggedError<KirosuError>()("KirosuError", {
  message: Schema.String
}) {}

/** An integer, also accepted as a numeric string (Kirosu clients send both). */
const IntLike = Schema.transformOrFail(Schema.Unknown, Schema.Int, {
  strict: true,
  decode: (u, _, ast) => {
    const n = typeof u === "number" ? u : typeof u === "string" && u.trim() !== "" ? Number(u) : NaN
    return Number.isInteger(n) ? ParseResult.succeed(n) : ParseResult.fail(new ParseResult.Type(ast, u, "expected an integer"))
  },
  encode: ParseResult.succeed
})

export const KirosuTaskId = IntLike.pipe(Schema.positive({ message: () => "expected a positive integer" }))

const OptionalString = Schema.optional(Schema.NullOr(Schema.String))
const OptionalInt = Schema.optional(Schema.NullOr(IntLike))

export const EnqueueParams = Schema.Struct({
  prompt: Schema.String,
  system_prompt: OptionalString,
  /** `chat` (default), `python` (code the agent runs), or `human` (waits for `approve`). */
  type: OptionalString
})

export const LeaseParams = Schema.Struct({
  worker_id: OptionalString,
  max_tasks: OptionalInt,
  lease_seconds: OptionalInt
})

export const AckParams = Schema.Struct({
  task_id: KirosuTaskId,
  status: Schema.String,
  result: Schema.optional(Schema.Unknown),
  error: Schema.optional(Schema.Unknown)
})

export const ListParams = Schema.Struct({
  status: OptionalString,
  /** Newest first; at most this many (default 50, `<= 0` means all). */
  limit: OptionalInt
})

export const ApproveParams = Schema.Struct({ task_id: KirosuTaskId })

export const KirosuStatus = Schema.Literal("queued", "leased", "done", "failed")
export type KirosuStatus = typeof KirosuStatus.Type

/** A task as Kirosu shows it. Times are epoch seconds. Keys appear on the wire in this order. */
export const KirosuTask = Schema.Struct({
  task_id: Schema.Int,
  prompt: Schema.String,
  system_prompt: Schema.NullOr(Schema.String),
  type: Schema.String,
  status: KirosuStatus,
  created_at: Schema.Number,
  updated_at: Schema.Number,
  leased_until: Schema.NullOr(Schema.Number),
  worker_id: Schema.NullOr(Schema.String),
  result: Schema.NullOr(Schema.String),
  error: Schema.NullOr(Schema.String)
})
export type KirosuTask = typeof KirosuTask.Type

/** Queue statistics as Kirosu shows them. Keys appear on the wire in this order. */
export const KirosuStats = Schema.Struct({
  queued: Schema.Int,
  leased: Schema.Int,
  done: Schema.Int,
  failed: Schema.Int,
  total_tasks: Schema.Int,
  completed_last_hour: Schema.Int,
  /** Mean of (finish − creation) over done tasks, 2 decimals; 0.0 when none. */
  avg_completion_time_sec: Schema.Number,
  /** failed / (done + failed) × 100, 2 decimals; 0.0 when none. */
  error_rate_percent: Schema.Number
})
export type KirosuStats = typeof KirosuStats.Type
