import { Chunk, Clock, Deferred, Effect, Either, Layer, Option, PubSub, Queue, Schedule, Schema, Stream } from "effect"
import { randomBytes } from "node:crypto"
import { Cluster } from "../cluster/Cluster.js"
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
import type { BatchEffects } from "./sql/BatchEffects.js"
import { dialectOf } from "./sql/Dialect.js"
import type { Sql } from "./sql/Query.js"
import { makeGroupCommit } from "./sql/GroupCommit.js"
import { StatusCounts } from "./sql/StatusCounts.js"
import { rowsOf } from "./sql/Query.js"
import { isTerminal, makeLease, type TaskRow, TaskRowSchema, taskRows, toTask } from "./sql/TaskRows.js"
import { approveOne, cancelOne, failOne, reap, refusal, rejectOne, retryOne, unlease } from "./sql/Transitions.js"
import { batchSignals, parseSignal, readySignal } from "./QueueSignals.js"
import { TaskQueue, type TaskFilter, type TaskQueueShape } from "./TaskQueue.js"
import { WorkerHub } from "./WorkerHub.js"

const allKinds = TaskKind.literals
const MAX_LEASE_BATCH = 1000
/** Largest page of `list`: bounds what one call can make the hub read, encode and buffer. */
export const MAX_LIST_PAGE = 200
const HOT_QUEUED = 20_000
/** How long a hub waits for its own LISTEN to hear its probe before it serves anyway. */
const LISTEN_READY_MS = 10_000
/** On PostgreSQL, `wait` also re-reads its pending tasks this often (a signal lost with a LISTEN connection). */
const WAIT_RECHECK_MS = 2_000

const countRows = rowsOf(Schema.Struct({ ...TaskRowSchema.pick("project_id", "kind", "status").fields, n: Schema.Number }))
const progressRows = rowsOf(TaskRowSchema.pick("id", "status", "worker_id", "fencing_token", "project_id"))
const summaryRows = rowsOf(Schema.Struct({ n: Schema.Number, total: Schema.NullOr(Schema.Number), recent: Schema.NullOr(Schema.Number) }))
const inFlightRows = rowsOf(Schema.Struct({ worker_id: WorkerIdSchema, n: Schema.Number }))

/**
 * TaskQueue on the hub's queue database: SQLite's `queue.db`, or the tables of a PostgreSQL database
 * that several hubs may share. Writes go through one group-commit writer (on PostgreSQL one at a
 * time across hubs, see GroupCommit.ts); reads query the database directly. After each commit:
 * workers are pushed "work available" / "cancel task", waiters woken and callers resolved; then one
 * `TasksChanged` event is published per project. On PostgreSQL the batch also tells the other hubs
 * (Cluster, `kiris_queue`), which do the same pushes and wake-ups for their own workers and waiters.
 *
 * Per hub by design: the worker registry (pushes reach the workers connected here; every other hub
 * pushes to its own), the metrics of what this hub's writer did, and the reaper's delayed-task wake-up.
 */
export const layerSql: Layer.Layer<TaskQueue, never, QueueDb | EventBus | WorkerHub | ServerConfig | Cluster> = Layer.scoped(
  TaskQueue,
  Effect.gen(function* () {
    const sql = yield* QueueDb
    const bus = yield* EventBus
    const hub = yield* WorkerHub
    const config = yield* ServerConfig
    const cluster = yield* Cluster
    const d = dialectOf(sql)
    /**
     * Whether other hubs may write the same tables. Then nothing in memory can stand for the
     * database: counts are queried and there is no hot cache.
     */
    const shared = d.pg
    const ended = yield* Effect.acquireRelease(PubSub.unbounded<ReadonlyArray<TaskId>>(), PubSub.shutdown)
    const backoff = { baseMs: config.taskRetryBaseMs, maxMs: config.taskRetryMaxMs }
    const newTaskId = taskIdSource()

    const counts = new StatusCounts()
    if (!shared) {
      counts.load(
        yield* countRows(sql, "SELECT project_id, kind, status, count(*) AS n FROM tasks GROUP BY project_id, kind, status", []).pipe(Effect.orDie)
      )
    }

    /**
     * The latest committed version of every leased task and of up to HOT_QUEUED queued ones, so that
     * leasing and completing build their Tasks without reading whole rows back (misses read them).
     * Stays empty when the database is shared: another hub's commits would make it stale.
     */
    const hot = new Map<TaskId, Task>()

    /** In memory, before the batch's callers get their outcomes: counts, the hot cache, worker pushes, waiters. */
    const afterCommit = (fx: BatchEffects) =>
      Effect.gen(function* () {
        recordQueueMetrics(fx)
        if (!shared) {
          for (const [projectId, status, delta, kind] of fx.counts) counts.add(projectId, status, delta, kind)
          for (const [id, task] of fx.hotChanges) {
            if (task === null) hot.delete(id)
            else if (task.status === "leased" || hot.size < HOT_QUEUED || hot.has(id)) hot.set(id, task)
          }
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

    /**
     * The other hubs' batches, applied here as `afterCommit` applies this hub's own: work available
     * and cancels pushed to the workers connected here, ended tasks to the waiters here. This hub's
     * own signals come back too and are skipped (applied already). Ready once LISTEN hears this
     * hub's probe, so that nothing committed after the layer is built goes unheard.
     */
    const listenToOtherHubs = Effect.gen(function* () {
      const nonce = randomBytes(6).toString("hex")
      const ready = yield* Deferred.make<void>()
      yield* cluster.listen("kiris_queue").pipe(
        Stream.runForEach((payload) => {
          const parsed = parseSignal(payload)
          if (parsed === undefined) return Effect.logWarning("task queue: unknown cluster signal", { payload })
          const { hubId, signal } = parsed
          if (hubId === cluster.hubId) return signal._tag === "ready" && signal.nonce === nonce ? Deferred.succeed(ready, undefined) : Effect.void
          switch (signal._tag) {
            case "work":
              return hub.notify(new Set(signal.kinds))
            case "cancel":
              return Effect.forEach(signal.cancels, (c) => hub.cancel(c.workerId, c.taskId), { discard: true })
            case "ended":
              return signal.ids.length > 0 ? Effect.asVoid(PubSub.publish(ended, signal.ids)) : Effect.void
            case "ready":
              return Effect.void
          }
        }),
        Effect.catchAllCause((cause) => Effect.logError("task queue: cluster signals stopped", cause)),
        Effect.withTracerEnabled(false),
        Effect.forkScoped
      )
      // LISTEN starts on its own fiber: probe until it hears one (on the real clock, also under a test clock)
      const probe = notify([readySignal(cluster.hubId, nonce)]).pipe(
        Effect.catchAllCause((cause) => Effect.logWarning("task queue: probing LISTEN failed", cause)),
        Effect.zipRight(Effect.sleep("50 millis")),
        Effect.forever
      )
      const heard = yield* Effect.raceFirst(Deferred.await(ready), probe).pipe(Effect.timeoutOption(LISTEN_READY_MS), Effect.withClock(Clock.make()))
      if (Option.isNone(heard)) yield* Effect.logWarning("task queue: LISTEN did not hear this hub's probe; serving anyway")
    })

    /** NOTIFYs on `kiris_queue`; in a transaction they go out when (and only if) it commits. */
    const notify = (payloads: ReadonlyArray<string>) =>
      payloads.length === 0
        ? Effect.void
        : Effect.asVoid(sql`SELECT pg_notify(${"kiris_queue"}, p) FROM jsonb_array_elements_text(CAST(${JSON.stringify(payloads)} AS jsonb)) AS p`)

    /** On PostgreSQL the batch's signals to the other hubs are NOTIFYs of its transaction. */
    const beforeCommit = (fx: BatchEffects) => notify(batchSignals(cluster.hubId, fx))

    const writer = yield* makeGroupCommit(sql, afterCommit, hot, cluster.backend === "pg" && d.pg ? { publish, beforeCommit } : { publish })

    if (cluster.backend === "pg") yield* listenToOtherHubs

    /** A read outside the writer's transaction, its rows decoded by `rows` (see Query.ts). */
    const read = <A>(
      rows: (sql: Sql, text: string, params: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<A>, SqlError>,
      text: string,
      params: ReadonlyArray<unknown>
    ) => outsideTransaction(rows(sql, text, params)).pipe(Effect.orDie, Effect.withTracerEnabled(false))

    const getMany: TaskQueueShape["getMany"] = (taskIds) =>
      Effect.gen(function* () {
        const rows = yield* read(taskRows, `SELECT * FROM tasks WHERE id IN (${d.textList})`, [JSON.stringify(taskIds)])
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
          const next = Queue.takeAll(subscription).pipe(
            Effect.flatMap((c) => (Chunk.isEmpty(c) ? Effect.map(Queue.take(subscription), Chunk.of) : Effect.succeed(c)))
          )
          const drain = Effect.gen(function* () {
            while (pending.size > 0) {
              const batches = shared ? yield* Effect.timeoutOption(next, WAIT_RECHECK_MS) : Option.some(yield* next)
              if (Option.isSome(batches)) {
                for (const batch of batches.value) for (const id of batch) pending.delete(id)
              } else {
                for (const t of yield* getMany([...pending])) if (isTerminal(t.status)) pending.delete(t.id)
              }
            }
          })
          yield* timeoutMs === undefined ? drain : Effect.timeoutOption(drain, Math.max(0, timeoutMs))
          return yield* getMany(taskIds)
        })
      )

    /** Counts as the database has them now (when it is shared). */
    const countsNow = (projectIds: ReadonlyArray<ProjectId> | undefined) =>
      Effect.map(
        projectIds === undefined
          ? read(countRows, "SELECT project_id, kind, status, count(*) AS n FROM tasks GROUP BY project_id, kind, status", [])
          : read(
              countRows,
              `SELECT project_id, kind, status, count(*) AS n FROM tasks WHERE project_id IN (${d.textList}) GROUP BY project_id, kind, status`,
              [JSON.stringify(projectIds)]
            ),
        (rows) => {
          const now = new StatusCounts()
          now.load(rows)
          return now
        }
      )

    /** `workers`: those connected to this hub. */
    const statsOf: TaskQueueShape["stats"] = (projectIds) =>
      Effect.zipWith(hub.connectedCount, shared ? countsNow(projectIds) : Effect.succeed(counts), (workers, c) =>
        TaskStats.make({ ...c.sum(projectIds), workers })
      )

    const list: TaskQueueShape["list"] = (filter: TaskFilter) => {
      const where: Array<string> = []
      const params: Array<unknown> = []
      if (filter.projectIds !== undefined) {
        if (filter.projectIds.length === 1) {
          where.push("project_id = ?")
          params.push(filter.projectIds[0])
        } else {
          where.push(`project_id IN (${d.textList})`)
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
      countsByKind: shared ? Effect.map(countsNow(undefined), (c) => c.byKind()) : Effect.sync(() => counts.byKind()),
      doneSummary: (projectIds, since) =>
        Effect.map(
          read(
            summaryRows,
            `SELECT count(*) AS n, sum(finished_at - created_at) AS total, ${d.countIf("finished_at >= ?")} AS recent FROM tasks
             WHERE project_id IN (${d.textList}) AND status = 'done' AND finished_at IS NOT NULL`,
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
