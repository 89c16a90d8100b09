import { Schema } from "effect"
import { ProjectId, TaskId, WorkerId } from "./Ids.js"

export const TaskKind = Schema.Literal("agent", "chat", "cli", "shell", "python", "human", "noop")
export type TaskKind = typeof TaskKind.Type

/**
 * `waiting` (on dependencies) → `queued` → `leased` → `done` | `failed` (non-retryable, or given up
 * by the caller) | `dead` (retries exhausted) | `cancelled`. `retry` moves failed/dead back to queued.
 * A `human` task is never queued nor leased: it is `input_required` until someone approves it
 * (`done`) or rejects it (`failed`).
 */
export const TaskStatus = Schema.Literal("waiting", "queued", "input_required", "leased", "done", "failed", "dead", "cancelled")
export type TaskStatus = typeof TaskStatus.Type
export const terminalStatuses: ReadonlyArray<TaskStatus> = ["done", "failed", "dead", "cancelled"]

/** Where a task runs on the worker. */
export const Workdir = Schema.Union(
  Schema.TaggedStruct("shared", { path: Schema.String }),
  Schema.TaggedStruct("isolated", { keep: Schema.optionalWith(Schema.Boolean, { default: () => false }) }),
  Schema.TaggedStruct("worktree", { repo: Schema.String, ref: Schema.optional(Schema.String) })
)
export type Workdir = typeof Workdir.Type

export const ChatPayload = Schema.Struct({
  prompt: Schema.String,
  system: Schema.optional(Schema.String),
  /** `provider:model`, e.g. `openai:gpt-4o-mini`, `anthropic:claude-sonnet-4-5`, `openai-compatible:llama3`. */
  model: Schema.optional(Schema.String),
  workdir: Schema.optional(Workdir)
})
export const CliPayload = Schema.Struct({
  prompt: Schema.String,
  /** `codex`, `kiro`, `claude`, or `custom` with `template` (`{prompt}` is replaced, shell-quoted). */
  adapter: Schema.Literal("codex", "kiro", "claude", "custom"),
  template: Schema.optional(Schema.String),
  /**
   * Arguments that replace a built-in adapter's default mode flags (e.g. its sandbox or permission
   * mode). They can make the CLI run anything, so they count as running commands (`execute` grant,
   * and only workers started with --trust-shell run them).
   */
  adapterArgs: Schema.optional(
    Schema.Array(
      Schema.String.pipe(Schema.maxLength(4096), Schema.pattern(/^[^\0]*$/, { message: () => "adapterArgs entries cannot contain NUL characters" }))
    ).pipe(Schema.maxItems(64))
  ),
  timeoutMs: Schema.optional(Schema.Number),
  workdir: Schema.optional(Workdir)
})
export const ShellPayload = Schema.Struct({
  command: Schema.String,
  timeoutMs: Schema.optional(Schema.Number),
  workdir: Schema.optional(Workdir)
})

/**
 * How one attempt at a task ended: `expired` when its worker stopped renewing the lease. `done` ends
 * the task, so it is never in `Task.history` (the task's own fields describe that attempt).
 */
export const AttemptOutcome = Schema.Literal("done", "failed", "expired", "cancelled")
export type AttemptOutcome = typeof AttemptOutcome.Type

/** One ended attempt at a task, as `Task.history` keeps it. */
export const TaskAttempt = Schema.Struct({
  /** The task's attempt count when it was leased (it restarts at 1 after `retry`). */
  attempt: Schema.Number,
  workerId: Schema.NullOr(WorkerId),
  startedAt: Schema.NullOr(Schema.Number),
  endedAt: Schema.Number,
  outcome: AttemptOutcome,
  error: Schema.NullOr(Schema.String)
})
export type TaskAttempt = typeof TaskAttempt.Type

export class Task extends Schema.Class<Task>("Task")({
  id: TaskId,
  /** Integer id, unique per hub (the Kirosu-compatible id). */
  seq: Schema.Number,
  projectId: ProjectId,
  kind: TaskKind,
  payload: Schema.Unknown,
  priority: Schema.Number,
  runAfter: Schema.Number,
  attempts: Schema.Number,
  maxAttempts: Schema.Number,
  idempotencyKey: Schema.NullOr(Schema.String),
  dependsOn: Schema.Array(TaskId),
  concurrencyKey: Schema.NullOr(Schema.String),
  concurrencyLimit: Schema.Number,
  status: TaskStatus,
  workerId: Schema.NullOr(WorkerId),
  leaseExpiresAt: Schema.NullOr(Schema.Number),
  progress: Schema.NullOr(Schema.Unknown),
  result: Schema.NullOr(Schema.Unknown),
  /** The last attempt's error while the task is not done (a later success clears it). */
  error: Schema.NullOr(Schema.String),
  createdAt: Schema.Number,
  updatedAt: Schema.Number,
  finishedAt: Schema.NullOr(Schema.Number),
  /** When the current (or last) attempt was leased. */
  startedAt: Schema.NullOr(Schema.Number),
  /** Its lease expired on several different workers: it may be what brings them down. */
  suspect: Schema.Boolean,
  /**
   * The attempts that ended without success (failed, expired, cancelled), oldest first, kept across
   * `retry`. The running attempt, or the one that succeeded, is the task itself (`attempts`,
   * `workerId`, `startedAt`, `finishedAt`).
   */
  history: Schema.Array(TaskAttempt)
}) {
  /**
   * The current lease's fencing token: a fresh random number on every lease, which the holder's
   * calls must carry. The hub keeps it on its own copies; it is not part of the schema, so it never
   * reaches clients (the worker learns it from its `Lease`).
   */
  declare readonly fencingToken: number
}

/**
 * When a task with dependencies runs. `all` (the default): once every dependency is done; it fails as
 * soon as one fails. `fail-fast`: like `all`, and the remaining dependencies are cancelled. `partial`:
 * once every dependency has ended, whatever the outcome. `quorum:K`: once every dependency has ended
 * and at least K are done; it fails as soon as K can no longer be reached.
 */
export const DependencyPolicy = Schema.Union(
  Schema.Literal("all", "fail-fast", "partial"),
  Schema.TemplateLiteral(Schema.Literal("quorum:"), Schema.Number)
)
export type DependencyPolicy = typeof DependencyPolicy.Type

export class EnqueueTask extends Schema.Class<EnqueueTask>("EnqueueTask")({
  projectId: ProjectId,
  kind: TaskKind,
  payload: Schema.Unknown,
  priority: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  /** Epoch ms before which the task is not leased. */
  runAfter: Schema.optional(Schema.Number),
  maxAttempts: Schema.optionalWith(Schema.Number, { default: () => 3 }),
  idempotencyKey: Schema.optional(Schema.String),
  dependsOn: Schema.optionalWith(Schema.Array(TaskId), { default: () => [] }),
  concurrencyKey: Schema.optional(Schema.String),
  concurrencyLimit: Schema.optionalWith(Schema.Number, { default: () => 1 }),
  dependencyPolicy: Schema.optional(DependencyPolicy)
}) {}

/** How one dependency of a leased task ended (a map item, for a map-reduce's reduce task). */
export const DependencyResult = Schema.Struct({
  /** Its position in the dependent's `dependsOn` (the item's index, for a map task). */
  index: Schema.Number,
  taskId: TaskId,
  /** The dependency's payload (the map item). */
  item: Schema.Unknown,
  status: TaskStatus,
  result: Schema.NullOr(Schema.Unknown),
  error: Schema.NullOr(Schema.String)
})
export type DependencyResult = typeof DependencyResult.Type

/** Handed to a worker: the task plus the fencing token its completion must carry. */
export class Lease extends Schema.Class<Lease>("Lease")({
  task: Task,
  fencingToken: Schema.Number,
  expiresAt: Schema.Number,
  /**
   * Results of the tasks this one depended on, by id, in `dependsOn` order: the bare result under
   * `all`/`fail-fast`, or `{index, item, status, result, error}` under `partial`/`quorum:K`.
   */
  inputs: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  /** The same dependencies as a list in `dependsOn` order (item index order for a reduce task). */
  dependencies: Schema.Array(DependencyResult),
  /** W3C trace context of the lease, when the hub traces (OpenTelemetry): the worker's run continues it. */
  traceparent: Schema.optional(Schema.String)
}) {}

export class TaskStats extends Schema.Class<TaskStats>("TaskStats")({
  waiting: Schema.Number,
  queued: Schema.Number,
  /** Human tasks waiting for an answer. */
  input_required: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  leased: Schema.Number,
  done: Schema.Number,
  failed: Schema.Number,
  dead: Schema.Number,
  cancelled: Schema.Number,
  workers: Schema.Number
}) {}

export class WorkerInfo extends Schema.Class<WorkerInfo>("WorkerInfo")({
  id: WorkerId,
  name: Schema.String,
  kinds: Schema.Array(TaskKind),
  capacity: Schema.Number,
  inFlight: Schema.Number,
  connected: Schema.Boolean,
  connectedAt: Schema.Number,
  lastSeenAt: Schema.Number
}) {}

/**
 * A worker call on a task (heartbeat, progress, completion, failure) was refused: nothing changed.
 * It never tells a token, nor whether the task exists or who holds it (see `leaseNotHeld`).
 */
export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", {
  taskId: TaskId,
  reason: Schema.String
}) {}

/**
 * The one refusal for a wrong token, a lease held by another worker and an unknown task alike, so
 * that a refusal reveals nothing about other workers' leases.
 */
export const leaseNotHeld = (taskId: TaskId) => new LeaseLost({ taskId, reason: "the lease on this task is not held by this worker" })
