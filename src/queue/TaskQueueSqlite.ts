import { Chunk, Clock, Effect, Either, Layer, PubSub, Queue, Schedule, Schema } from "effect"
import { ServerConfig } from "../config/ServerConfig.js"
import { InvalidInput, NotFound } from "../domain/Errors.js"
import type { SqlError } from "@effect/sql/SqlError"
import { type ProjectId, type TaskId, type WorkerId, WorkerId as WorkerIdSchema } from "../domain/Ids.js"
import { type Lease, type Task, TaskKind, TaskStats } from "../domain/Task.js"
import { EventBus } from "../events/EventBus.js"
import { QueueDb } from "../storage/QueueDb.js"
import { currentTraceparent, markSpan } from "../runtime/Tracing.js"
import { outsideTransaction } from "../storage/RootDb.js"
import { recordQueueMetrics } from "../transport/metrics/QueueMetrics.js"
import { prepareTask, taskIdSource } from "./PrepareTask.js"
import type { BatchEffects } from "./sqlite/BatchEffects.js"
import type { Sql } from "./sqlite/Query.js"
import { makeGroupCommit } from "./sqlite/GroupCommit.js"
import { StatusCounts } from "./sqlite/StatusCounts.js"
import { rowsOf } from "./sqlite/Query.js"
import { isTerminal, makeLease, type TaskRow, TaskRowSchema, taskRows, toTask } from "./sqlite/TaskRows.js"
import { approveOne, cancelOne, failOne, reap, refusal, rejectOne, retryOne, unlease } from "./sqlite/Transitions.js"
import { TaskQueue, type TaskFilter, type TaskQueueShape } from "./TaskQueue.js"
import { WorkerHub } from "./WorkerHub.js"

const allKinds = TaskKind.literals
const MAX_LEASE_BATCH = 1000
/** Largest page of `list`: bounds what one call can make the hub read, encode and buffer. */
export const MAX_LIST_PAGE = 200
const HOT_QUEUED = 20_000

const countRows = rowsOf(Schema.Struct({ ...TaskRowSchema.pick("project_id", "kind", "status").fields, n: Schema.Number }))
const progressRows = rowsOf(TaskRowSchema.pick("id", "status", "worker_id", "fencing_token", "project_id"))
const summaryRows = rowsOf(Schema.Struct({ n: Schema.Number, total: Schema.NullOr(Schema.Number), recent: Schema.NullOr(Schema.Number) }))
const inFlightRows = rowsOf(Schema.Struct({ worker_id: WorkerIdSchema, n: Schema.Number }))

/**
 * TaskQueue on the hub's `queue.db`. Writes go through one group-commit writer; reads query the
 * database directly. After each commit: workers are pushed "work available" / "cancel task",
 * waiters woken and callers resolved; then one `TasksChanged` event is published per project.
 */
export const layerSqlite: Layer.Layer<TaskQueue, never, QueueDb | EventBus | WorkerHub | ServerConfig> = Layer.scoped(
  TaskQueue,
  Effect.gen(function* () {
    const sql = yield* QueueDb
    const bus = yield* EventBus
    const hub = yield* WorkerHub
    const config = yield* ServerConfig
    const ended = yield* Effect.acquireRelease(PubSub.unbounded<ReadonlyArray<TaskId>>(), PubSub.shutdown)
    const backoff = { baseMs: config.taskRetryBaseMs, maxMs: config.taskRetryMaxMs }
    const newTaskId = taskIdSource()

    const counts = new StatusCounts()
    counts.load(
      yield* countRows(sql, "SELECT project_id, kind, status, count(*) AS n FROM tasks GROUP BY project_id, kind, status", []).pipe(Effect.orDie)
    )

    /**
     * The latest committed version of every leased task and of up to HOT_QUEUED queued ones, so that
     * leasing and completing build their Tasks without reading whole rows back (misses read them).
     */
    const hot = new Map<TaskId, Task>()

    /** In memory, before the batch's callers get their outcomes: counts, the hot cache, worker pushes, waiters. */
    const afterCommit = (fx: BatchEffects) =>
      Effect.gen(function* () {
        for (const [projectId, status, delta, kind] of fx.counts) counts.add(projectId, status, delta, kind)
        recordQueueMetrics(fx)
        for (const [id, task] of fx.hotChanges) {
          if (task === null) hot.delete(id)
          else if (task.status === "leased" || hot.size < HOT_QUEUED || hot.has(id)) hot.set(id, task)
        }
        yield* hub.notify(fx.wakeKinds)
        for (const c of fx.cancels) yield* hub.cancel(c.workerId, c.taskId)
        if (fx.ended.length > 0) yield* PubSub.publish(ended, fx.ended)
      })

    /** After the callers got their outcomes: one `TasksChanged` per project (logged, then delivered), inbox events. */
    const publish = (fx: BatchEffects) =>
      Effect.gen(function* () {
        if (fx.changed.length > 0) {
          const byProject = new Map<ProjectId, Array<Task>>()
          for (const t of fx.changed) {
            const list = byProject.get(t.projectId)
            if (list) list.push(t)
            else byProject.set(t.projectId, [t])
          }
          for (const [projectId, tasks] of byProject) yield* bus.publish(projectId, { _tag: "TasksChanged", tasks })
        }
        for (const { event, task } of fx.inbox) yield* bus.publish(task.projectId, event)
      })

    const writer = yield* makeGroupCommit(sql, afterCommit, hot, { publish })

    /** A read outside the writer's transaction, its rows decoded by `rows` (see Query.ts). */
    const read = <A>(
      rows: (sql: Sql, text: string, params: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<A>, SqlError>,
      text: string,
      params: ReadonlyArray<unknown>
    ) => outsideTransaction(rows(sql, text, params)).pipe(Effect.orDie, Effect.withTracerEnabled(false))

    const getMany: TaskQueueShape["getMany"] = (taskIds) =>
      Effect.gen(function* () {
        const rows = yield* read(taskRows, "SELECT * FROM tasks WHERE id IN (SELECT value FROM json_each(?))", [JSON.stringify(taskIds)])
        const byId = new Map(rows.map((r) => [r.id, r]))
        const out: Array<Task> = []
        for (const id of taskIds) {
          const row = byId.get(id)
          if (row === undefined) return yield* new NotFound({ entity: "task", id })
          out.push(toTask(row))
        }
        return out
      })

    const one = (rows: ReadonlyArray<TaskRow>, id: string | number) =>
      rows[0] === undefined ? Effect.fail(new NotFound({ entity: "task", id: String(id) })) : Effect.succeed(toTask(rows[0]))

    const enqueueBatch: TaskQueueShape["enqueueBatch"] = (inputs) =>
      Effect.gen(function* () {
        if (inputs.length === 0) return []
        const now = yield* Clock.currentTimeMillis
        const prepared = yield* Effect.forEach(inputs, (input) =>
          Either.match(prepareTask(input, now, newTaskId), { onLeft: Effect.fail, onRight: Effect.succeed })
        )
        // with tracing on, each task carries the enqueuing span's context to its lease and its worker
        const traceparent = yield* currentTraceparent
        const items = traceparent === undefined ? prepared : prepared.map((item) => ({ ...item, traceparent }))
        return yield* writer.submit<ReadonlyArray<Task>, NotFound | InvalidInput>((done) => ({ _tag: "Enqueue", items, done }))
      })

    const lease: TaskQueueShape["lease"] = (workerId, kinds, max, leaseSeconds, projectIds) =>
      Effect.gen(function* () {
        const seconds = leaseSeconds ?? config.leaseSeconds
        if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 7 * 86_400) {
          return yield* new InvalidInput({ reason: "leaseSeconds must be more than 0 and at most 7 days" })
        }
        // `human` tasks are never handed to a worker: they wait for `approve`.
        const wanted = [...new Set(kinds)].filter((k) => allKinds.includes(k) && k !== "human")
        const count = Math.min(Math.floor(max), MAX_LEASE_BATCH)
        yield* hub.touch(workerId)
        if (wanted.length === 0 || !(count > 0) || projectIds?.length === 0) return []
        const request = { workerId, kinds: wanted, max: count, leaseMs: Math.round(seconds * 1000), projectIds }
        const leases = yield* writer.submit<ReadonlyArray<Lease>, never>(
          (done) => ({ _tag: "Lease", request, done }),
          (leases) =>
            leases.length === 0
              ? Effect.void
              : Effect.asVoid(
                  writer.run((fx) =>
                    unlease(
                      sql,
                      fx,
                      leases.map((l) => ({ taskId: l.task.id, fencingToken: l.fencingToken }))
                    )
                  )
                )
        )
        return yield* traceLeases(leases, workerId)
      })

    /** A traced task's lease becomes a `task.lease` span in the task's trace; its worker continues from there. */
    const traceLeases = (leases: ReadonlyArray<Lease>, workerId: WorkerId) =>
      leases.some((l) => l.traceparent !== undefined)
        ? Effect.forEach(leases, (l) =>
            l.traceparent === undefined
              ? Effect.succeed(l)
              : Effect.map(
                  markSpan(l.traceparent, "task.lease", {
                    "kiris.task_id": l.task.id,
                    "kiris.task_kind": l.task.kind,
                    "kiris.worker_id": workerId,
                    "kiris.attempt": l.task.attempts
                  }),
                  (traceparent) => (traceparent === undefined ? l : makeLease({ ...l, traceparent }))
                )
          )
        : Effect.succeed(leases)

    const completeBatch: TaskQueueShape["completeBatch"] = (workerId, items) =>
      items.length === 0 ? Effect.succeed([]) : writer.submit((done) => ({ _tag: "Complete", items: items.map((i) => ({ ...i, workerId })), done }))

    const wait: TaskQueueShape["wait"] = (taskIds, timeoutMs) =>
      Effect.scoped(
        Effect.gen(function* () {
          const subscription = yield* PubSub.subscribe(ended)
          const initial = yield* getMany(taskIds)
          const pending = new Set(initial.filter((t) => !isTerminal(t.status)).map((t) => t.id))
          if (pending.size === 0) return initial
          const drain = Effect.gen(function* () {
            while (pending.size > 0) {
              const batches = yield* Queue.takeAll(subscription).pipe(
                Effect.flatMap((c) => (Chunk.isEmpty(c) ? Effect.map(Queue.take(subscription), Chunk.of) : Effect.succeed(c)))
              )
              for (const batch of batches) for (const id of batch) pending.delete(id)
            }
          })
          yield* timeoutMs === undefined ? drain : Effect.timeoutOption(drain, Math.max(0, timeoutMs))
          return yield* getMany(taskIds)
        })
      )

    const statsOf: TaskQueueShape["stats"] = (projectIds) =>
      Effect.map(hub.connectedCount, (workers) => TaskStats.make({ ...counts.sum(projectIds), workers }))

    const list: TaskQueueShape["list"] = (filter: TaskFilter) => {
      const where: Array<string> = []
      const params: Array<unknown> = []
      if (filter.projectIds !== undefined) {
        if (filter.projectIds.length === 1) {
          where.push("project_id = ?")
          params.push(filter.projectIds[0])
        } else {
          where.push("project_id IN (SELECT value FROM json_each(?))")
          params.push(JSON.stringify(filter.projectIds))
        }
      }
      const add = (clause: string, value: unknown) => {
        where.push(clause)
        params.push(value)
      }
      if (filter.status !== undefined) add("status = ?", filter.status)
      if (filter.kind !== undefined) add("kind = ?", filter.kind)
      if (filter.beforeSeq !== undefined) add("seq < ?", filter.beforeSeq)
      const limit = Math.max(1, Math.min(MAX_LIST_PAGE, Math.floor(filter.limit ?? 100) || 100))
      const text = `SELECT * FROM tasks ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY seq DESC LIMIT ?`
      return read(taskRows, text, [...params, limit]).pipe(Effect.map((rows) => rows.map(toTask)))
    }

    let reapedUntil = 0
    const reaper = writer.run((fx) =>
      Effect.zipRight(
        reap(sql, fx, backoff, reapedUntil),
        Effect.sync(() => (reapedUntil = fx.now))
      )
    )
    yield* reaper.pipe(Effect.repeat(Schedule.spaced(config.reaperIntervalMs)), Effect.forkScoped)

    return TaskQueue.of({
      enqueue: (input) => Effect.map(enqueueBatch([input]), (tasks) => tasks[0]!),
      enqueueBatch,
      lease,
      heartbeat: (workerId, taskId, fencingToken, progress) =>
        writer.submit((done) => ({ _tag: "Heartbeat", item: { workerId, taskId, fencingToken, progress }, done })),
      complete: (workerId, taskId, fencingToken, result) =>
        Effect.flatMap(completeBatch(workerId, [{ taskId, fencingToken, result }]), ([outcome]) =>
          outcome!.ok ? Effect.succeed(outcome!.task) : Effect.fail(outcome!.error)
        ),
      completeBatch,
      fail: (workerId, taskId, fencingToken, message, retryable) =>
        writer.run((fx) => failOne(sql, fx, backoff, workerId, taskId, fencingToken, message, retryable)),
      progress: (workerId, taskId, fencingToken, parts) =>
        Effect.gen(function* () {
          const [row] = yield* read(progressRows, "SELECT id, status, worker_id, fencing_token, project_id FROM tasks WHERE id = ?", [taskId])
          if (row === undefined || row.status !== "leased" || row.fencing_token !== fencingToken || row.worker_id !== workerId) {
            return yield* refusal(taskId, workerId, fencingToken, row)
          }
          yield* bus.publish(row.project_id, { _tag: "TaskProgress", taskId, parts })
        }),
      cancel: Effect.fn("TaskQueue.cancel")((taskId: TaskId) => writer.run((fx) => cancelOne(sql, fx, taskId))),
      retry: Effect.fn("TaskQueue.retry")((taskId: TaskId) => writer.run((fx) => retryOne(sql, fx, taskId))),
      approve: Effect.fn("TaskQueue.approve")((taskId: TaskId, result: unknown) => writer.run((fx) => approveOne(sql, fx, taskId, result))),
      reject: Effect.fn("TaskQueue.reject")((taskId: TaskId, reason: string) => writer.run((fx) => rejectOne(sql, fx, taskId, reason))),
      get: (taskId) => Effect.flatMap(read(taskRows, "SELECT * FROM tasks WHERE id = ?", [taskId]), (rows) => one(rows, taskId)),
      getBySeq: (seq) => Effect.flatMap(read(taskRows, "SELECT * FROM tasks WHERE seq = ?", [seq]), (rows) => one(rows, seq)),
      getMany,
      list: Effect.fn("TaskQueue.list")(list),
      stats: statsOf,
      countsByKind: Effect.sync(() => counts.byKind()),
      doneSummary: (projectIds, since) =>
        Effect.map(
          read(
            summaryRows,
            `SELECT count(*) AS n, sum(finished_at - created_at) AS total, sum(finished_at >= ?) AS recent FROM tasks
             WHERE project_id IN (SELECT value FROM json_each(?)) AND status = 'done' AND finished_at IS NOT NULL`,
            [since, JSON.stringify(projectIds)]
          ),
          ([r]) => ({ count: r?.n ?? 0, durationMsSum: r?.total ?? 0, finishedSince: r?.recent ?? 0 })
        ),
      wait: Effect.fn("TaskQueue.wait")(wait),
      inFlight: Effect.map(
        read(inFlightRows, "SELECT worker_id, count(*) AS n FROM tasks WHERE status = 'leased' GROUP BY worker_id", []),
        (rows) => new Map(rows.map((r) => [r.worker_id, r.n]))
      )
    })
  })
)
