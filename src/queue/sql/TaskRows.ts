import { Schema } from "effect"
import { rowsOf } from "./Query.js"
import { ProjectId, TaskId, WorkerId } from "../../domain/Ids.js"
import { type DependencyPolicy, Lease, Task, type TaskAttempt, TaskKind, TaskStatus, terminalStatuses } from "../../domain/Task.js"

const Text = Schema.String
const NullableText = Schema.NullOr(Schema.String)
const NullableNumber = Schema.NullOr(Schema.Number)

/**
 * A `tasks` row as SQLite returns it (JSON columns as text), decoded at the edge of the repository
 * (see `rowsOf` in Query.ts). (PostgreSQL hands BIGINT columns back as strings unless its client
 * is told to parse them: that backend configures its client so, or these become NumberFromString.)
 */
export const TaskRowSchema = Schema.Struct({
  seq: Schema.Number,
  id: TaskId,
  project_id: ProjectId,
  kind: TaskKind,
  payload: Text,
  priority: Schema.Number,
  run_after: Schema.Number,
  attempts: Schema.Number,
  max_attempts: Schema.Number,
  idempotency_key: NullableText,
  depends_on: NullableText,
  dep_policy: NullableText,
  concurrency_key: NullableText,
  concurrency_limit: Schema.Number,
  status: TaskStatus,
  worker_id: Schema.NullOr(WorkerId),
  lease_expires_at: NullableNumber,
  lease_ms: Schema.Number,
  fencing_token: Schema.Number,
  progress: NullableText,
  result: NullableText,
  error: NullableText,
  created_at: Schema.Number,
  updated_at: Schema.Number,
  finished_at: NullableNumber,
  started_at: NullableNumber,
  /** JSON text: the ended attempts (TaskAttempt), oldest first. */
  attempt_log: NullableText,
  suspect: Schema.Number,
  /** W3C trace context of the span that enqueued the task (NULL unless the hub traces). */
  traceparent: Schema.optional(NullableText)
})
export type TaskRow = typeof TaskRowSchema.Type

/** Whole `tasks` rows (`SELECT *`, `RETURNING *`), decoded. */
export const taskRows = rowsOf(TaskRowSchema)

const parseJson = (text: string | null): unknown => (text === null ? null : JSON.parse(text))

type TaskFields = Required<ConstructorParameters<typeof Task>[0]> & { readonly fencingToken: number }

const noHistory: ReadonlyArray<TaskAttempt> = Object.freeze([])

/** The ended attempts a row's `attempt_log` holds. */
export const attemptLog = (text: string | null): ReadonlyArray<TaskAttempt> =>
  text === null ? noHistory : (JSON.parse(text) as ReadonlyArray<TaskAttempt>)

/**
 * Lease expiries on this many different workers make a task `suspect` (one that may be what brings
 * its workers down, rather than a worker that happened to die).
 */
export const SUSPECT_AFTER_WORKERS = 3

/** Whether the lease of tasks with this history expired on at least SUSPECT_AFTER_WORKERS different workers. */
export const isSuspect = (history: ReadonlyArray<TaskAttempt>): boolean => {
  const workers = new Set<string | null>()
  for (const a of history) if (a.outcome === "expired") workers.add(a.workerId)
  return workers.size >= SUSPECT_AFTER_WORKERS
}
type Writable<T> = { -readonly [K in keyof T]: T[K] }

/**
 * Builds Task instances from trusted fields for every task of every batch: a plain constructor on
 * Task's prototype (so it encodes and compares as a Task) costs a fraction of the Schema.Class
 * constructor's copy-and-merge-defaults, and gives every instance the same hidden class.
 */
function TaskInstance(this: Writable<TaskFields>, f: TaskFields) {
  this.id = f.id
  this.seq = f.seq
  this.projectId = f.projectId
  this.kind = f.kind
  this.payload = f.payload
  this.priority = f.priority
  this.runAfter = f.runAfter
  this.attempts = f.attempts
  this.maxAttempts = f.maxAttempts
  this.idempotencyKey = f.idempotencyKey
  this.dependsOn = f.dependsOn
  this.concurrencyKey = f.concurrencyKey
  this.concurrencyLimit = f.concurrencyLimit
  this.status = f.status
  this.workerId = f.workerId
  this.leaseExpiresAt = f.leaseExpiresAt
  this.fencingToken = f.fencingToken
  this.progress = f.progress
  this.result = f.result
  this.error = f.error
  this.createdAt = f.createdAt
  this.updatedAt = f.updatedAt
  this.finishedAt = f.finishedAt
  this.startedAt = f.startedAt
  this.suspect = f.suspect
  this.history = f.history
}
TaskInstance.prototype = Task.prototype
const makeTask = (fields: TaskFields): Task => new (TaskInstance as unknown as new (f: TaskFields) => Task)(fields)

type LeaseFields = Required<ConstructorParameters<typeof Lease>[0]>
function LeaseInstance(this: Writable<LeaseFields>, f: LeaseFields) {
  this.task = f.task
  this.fencingToken = f.fencingToken
  this.expiresAt = f.expiresAt
  this.inputs = f.inputs
  this.dependencies = f.dependencies
  if (f.traceparent !== undefined) this.traceparent = f.traceparent
}
LeaseInstance.prototype = Lease.prototype
/** A Lease instance from trusted fields (see TaskInstance). */
export const makeLease = (fields: LeaseFields): Lease => new (LeaseInstance as unknown as new (f: LeaseFields) => Lease)(fields)

export const toTask = (r: TaskRow): Task =>
  makeTask({
    id: r.id,
    seq: r.seq,
    projectId: r.project_id,
    kind: r.kind,
    payload: parseJson(r.payload),
    priority: r.priority,
    runAfter: r.run_after,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    idempotencyKey: r.idempotency_key,
    dependsOn: r.depends_on === null ? [] : (JSON.parse(r.depends_on) as Array<TaskId>),
    concurrencyKey: r.concurrency_key,
    concurrencyLimit: r.concurrency_limit,
    status: r.status,
    workerId: r.worker_id,
    leaseExpiresAt: r.lease_expires_at,
    fencingToken: r.fencing_token,
    progress: parseJson(r.progress),
    result: parseJson(r.result),
    error: r.error,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at,
    startedAt: r.started_at,
    suspect: r.suspect !== 0,
    history: attemptLog(r.attempt_log)
  })

export const isTerminal = (status: string): boolean => terminalStatuses.includes(status as TaskStatus)

/** A validated task about to be inserted. */
export interface NewTask {
  readonly id: TaskId
  readonly projectId: ProjectId
  readonly kind: TaskKind
  readonly payload: unknown
  readonly priority: number
  readonly runAfter: number
  readonly maxAttempts: number
  readonly idempotencyKey: string | null
  readonly dependsOn: ReadonlyArray<TaskId>
  readonly dependencyPolicy: DependencyPolicy | null
  readonly concurrencyKey: string | null
  readonly concurrencyLimit: number
  /** W3C trace context of the span that enqueued it, when tracing is on. */
  readonly traceparent?: string | undefined
}

/** What a new task is: `waiting` on dependencies, else `input_required` (a human task) or `queued`. */
export const readyStatus = (t: { readonly kind: TaskKind; readonly dependsOn: ReadonlyArray<unknown> }): TaskStatus =>
  t.dependsOn.length > 0 ? "waiting" : t.kind === "human" ? "input_required" : "queued"

/** SQL for the status a task whose dependencies have settled moves to (a human task waits for an answer). */
export const releasedStatusSql = "CASE WHEN kind = 'human' THEN 'input_required' ELSE 'queued' END"

/** The Task a fresh insert produced, built from the input rather than read back. */
export const insertedTask = (t: NewTask, seq: number, now: number): Task =>
  makeTask({
    id: t.id,
    seq,
    projectId: t.projectId,
    kind: t.kind,
    payload: t.payload === undefined ? null : t.payload,
    priority: t.priority,
    runAfter: t.runAfter,
    attempts: 0,
    maxAttempts: t.maxAttempts,
    idempotencyKey: t.idempotencyKey,
    dependsOn: t.dependsOn,
    concurrencyKey: t.concurrencyKey,
    concurrencyLimit: t.concurrencyLimit,
    status: readyStatus(t),
    workerId: null,
    leaseExpiresAt: null,
    fencingToken: 0,
    progress: null,
    result: null,
    error: null,
    createdAt: now,
    updatedAt: now,
    finishedAt: null,
    startedAt: null,
    suspect: false,
    history: noHistory
  })

/** The task as `completeMany` leaves it, from the task as it was leased (what the row now holds); a success clears the error. */
export const completedTask = (leased: Task, result: unknown, now: number): Task =>
  makeTask({
    ...leased,
    status: "done",
    result: result === undefined ? null : result,
    error: null,
    leaseExpiresAt: null,
    finishedAt: now,
    updatedAt: now
  })

/** The task as the lease UPDATE leaves it, from the task as it was queued and the token it drew. */
export const leasedTask = (queued: Task, workerId: WorkerId, expiresAt: number, now: number, fencingToken: number): Task =>
  makeTask({
    ...queued,
    status: "leased",
    workerId,
    leaseExpiresAt: expiresAt,
    fencingToken,
    attempts: queued.attempts + 1,
    startedAt: now,
    updatedAt: now
  })
