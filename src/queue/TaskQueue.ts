import { Context, type Effect } from "effect"
import type { InvalidInput, NotFound } from "../domain/Errors.js"
import type { ProjectId, TaskId, WorkerId } from "../domain/Ids.js"
import type { EnqueueTask, Lease, LeaseLost, Task, TaskKind, TaskStats, TaskStatus } from "../domain/Task.js"

/** An enqueue request; `id` may be chosen by the caller (map-reduce wires dependencies by id in one batch). */
export type EnqueueInput = EnqueueTask & { readonly id?: TaskId | undefined }

export interface TaskFilter {
  /** Only these projects; `undefined` means every project. */
  readonly projectIds?: ReadonlyArray<ProjectId> | undefined
  readonly status?: TaskStatus | undefined
  readonly kind?: TaskKind | undefined
  /** Default 100, at most 200 (larger values are capped). */
  readonly limit?: number | undefined
  /** Only tasks with a smaller `seq` (paging newest-first). */
  readonly beforeSeq?: number | undefined
}

export interface CompleteItem {
  readonly taskId: TaskId
  readonly fencingToken: number
  readonly result: unknown
}

export type CompleteOutcome =
  { readonly taskId: TaskId; readonly ok: true; readonly task: Task } | { readonly taskId: TaskId; readonly ok: false; readonly error: LeaseLost }

export interface HeartbeatResult {
  readonly expiresAt: number
  /** The task was cancelled while leased: stop working on it. */
  readonly cancelled: boolean
}

export interface TaskQueueShape {
  /** Idempotency key: an existing task of the same project and key is returned unchanged. */
  readonly enqueue: (input: EnqueueInput) => Effect.Effect<Task, NotFound | InvalidInput>
  /** All-or-nothing validation, one commit; results in input order. */
  readonly enqueueBatch: (inputs: ReadonlyArray<EnqueueInput>) => Effect.Effect<ReadonlyArray<Task>, NotFound | InvalidInput>
  /**
   * Up to `max` queued tasks of `kinds` whose `runAfter` has passed, highest priority first then
   * oldest, respecting concurrency keys. Each lease gets a new random fencing token and counts an
   * attempt; the task is then held by `workerId`.
   */
  readonly lease: (
    workerId: WorkerId,
    kinds: ReadonlyArray<TaskKind>,
    max: number,
    leaseSeconds?: number,
    /** Only tasks of these projects (every project when omitted). */
    projectIds?: ReadonlyArray<ProjectId>
  ) => Effect.Effect<ReadonlyArray<Lease>, InvalidInput>
  /*
   * The holder's calls: each is accepted only while `workerId` holds the task's lease with
   * `fencingToken`. Anything else (a stale or wrong token, another holder, an unknown task) is the
   * same `leaseNotHeld` refusal; only the holder itself learns that its task was cancelled or ended.
   */
  readonly heartbeat: (workerId: WorkerId, taskId: TaskId, fencingToken: number, progress?: unknown) => Effect.Effect<HeartbeatResult, LeaseLost>
  readonly complete: (workerId: WorkerId, taskId: TaskId, fencingToken: number, result: unknown) => Effect.Effect<Task, LeaseLost>
  readonly completeBatch: (workerId: WorkerId, items: ReadonlyArray<CompleteItem>) => Effect.Effect<ReadonlyArray<CompleteOutcome>>
  /**
   * Retryable failures go back to `queued` after an exponential backoff, or to `dead` once attempts
   * reach maxAttempts; `retryable: false` ends the task as `failed`.
   */
  readonly fail: (workerId: WorkerId, taskId: TaskId, fencingToken: number, message: string, retryable: boolean) => Effect.Effect<Task, LeaseLost>
  /** Checks the lease is current and publishes the parts as a `TaskProgress` event. */
  readonly progress: (workerId: WorkerId, taskId: TaskId, fencingToken: number, parts: ReadonlyArray<unknown>) => Effect.Effect<void, LeaseLost>
  /** queued/waiting/input_required/leased → cancelled (the leasing worker is told); an ended task is returned unchanged. */
  readonly cancel: (taskId: TaskId) => Effect.Effect<Task, NotFound>
  /** failed/dead/cancelled → queued with attempts reset. */
  readonly retry: (taskId: TaskId) => Effect.Effect<Task, NotFound | InvalidInput>
  /** Ends a not-yet-ended `human` task as done with `result` (an approval). */
  readonly approve: (taskId: TaskId, result: unknown) => Effect.Effect<Task, NotFound | InvalidInput>
  /** Ends a not-yet-ended `human` task as failed, `reason` as its error (a rejection). */
  readonly reject: (taskId: TaskId, reason: string) => Effect.Effect<Task, NotFound | InvalidInput>
  readonly get: (taskId: TaskId) => Effect.Effect<Task, NotFound>
  readonly getBySeq: (seq: number) => Effect.Effect<Task, NotFound>
  /** In the order given; NotFound for the first unknown id. */
  readonly getMany: (taskIds: ReadonlyArray<TaskId>) => Effect.Effect<ReadonlyArray<Task>, NotFound>
  /** Newest first. */
  readonly list: (filter: TaskFilter) => Effect.Effect<ReadonlyArray<Task>>
  readonly stats: (projectIds?: ReadonlyArray<ProjectId>) => Effect.Effect<TaskStats>
  /** Task counts of every project by kind and status (on SQLite kept in memory: no query; on PostgreSQL, shared with other hubs, counted). */
  readonly countsByKind: Effect.Effect<ReadonlyMap<TaskKind, Readonly<Record<TaskStatus, number>>>>
  /** Over the done tasks of these projects: how many, the sum of (finishedAt − createdAt) in ms, and how many finished at or after `since`. */
  readonly doneSummary: (
    projectIds: ReadonlyArray<ProjectId>,
    since: number
  ) => Effect.Effect<{ readonly count: number; readonly durationMsSum: number; readonly finishedSince: number }>
  /** Resolves once every task has ended, or after `timeoutMs` with their current state. */
  readonly wait: (taskIds: ReadonlyArray<TaskId>, timeoutMs?: number) => Effect.Effect<ReadonlyArray<Task>, NotFound>
  /** Leased task count per worker id. */
  readonly inFlight: Effect.Effect<ReadonlyMap<string, number>>
}

/**
 * The durable swarm task queue: enqueue, lease with fencing tokens, heartbeat, complete/fail with
 * retries and dead letters, cancel, dependencies (fan-in) and waiting. One implementation for
 * SQLite and PostgreSQL (`layerSql` in TaskQueueSql.ts; the dialects' differences in sql/Dialect.ts).
 */
export class TaskQueue extends Context.Tag("kiris/TaskQueue")<TaskQueue, TaskQueueShape>() {}
