import { SqlError } from "@effect/sql/SqlError"
import { Cause, Clock, Deferred, Effect, Either, Exit } from "effect"
import { InvalidInput, NotFound } from "../../domain/Errors.js"
import type { TaskId } from "../../domain/Ids.js"
import type { Lease, LeaseLost, Task } from "../../domain/Task.js"
import type { CompleteOutcome, HeartbeatResult } from "../TaskQueue.js"
import { BatchEffects } from "./BatchEffects.js"
import { insertTasks, lease, type LeaseRequest, lookupProjects, release, type Sql } from "./Statements.js"
import type { NewTask } from "./TaskRows.js"
import { completeMany, type HeldCompleteItem, heartbeatMany, type HeartbeatItem } from "./Transitions.js"

/**
 * The queue's single writer. Callers enqueue operations; the writer takes whatever is pending (up to
 * MAX_OPS operations and MAX_BATCH_ITEMS items), runs it in ONE transaction with one set-based
 * statement per kind of operation, commits, then resolves every caller and hands the batch's effects
 * (events, pushes) to `afterCommit`. If a batch dies, its operations are retried one by one so that
 * only the culprit fails. An idle writer starts on an operation the moment it arrives (no timer).
 *
 * The backlog (items submitted and not yet taken into a batch: an enqueue or a completion counts
 * its tasks, anything else 1) is bounded by `maxBacklog`: a caller that would overflow it waits
 * until the writer has taken enough (FIFO); nothing is dropped.
 */
export type Op =
  | {
      readonly _tag: "Enqueue"
      readonly items: ReadonlyArray<NewTask>
      readonly done: Deferred.Deferred<ReadonlyArray<Task>, NotFound | InvalidInput>
    }
  | { readonly _tag: "Complete"; readonly items: ReadonlyArray<HeldCompleteItem>; readonly done: Deferred.Deferred<ReadonlyArray<CompleteOutcome>> }
  | { readonly _tag: "Heartbeat"; readonly item: HeartbeatItem; readonly done: Deferred.Deferred<HeartbeatResult, LeaseLost> }
  | { readonly _tag: "Lease"; readonly request: LeaseRequest; readonly done: Deferred.Deferred<ReadonlyArray<Lease>> }
  | {
      readonly _tag: "Run"
      readonly run: (fx: BatchEffects) => Effect.Effect<unknown, unknown>
      readonly done: Deferred.Deferred<unknown, unknown>
    }

const MAX_OPS = 4096
/** A batch stops taking operations once it holds this many items (a larger single operation still runs whole). */
const MAX_BATCH_ITEMS = 8192
/** Default bound of the backlog, in items. */
export const MAX_BACKLOG = 32_768

/** What an operation weighs in the backlog: the tasks it carries. */
const weightOf = (op: Op): number => (op._tag === "Enqueue" || op._tag === "Complete" ? Math.max(1, op.items.length) : 1)

type Results = Array<Exit.Exit<unknown, unknown>>

/** SQL failures abort the whole batch (as defects); domain failures belong to their operation. */
const sqlDies = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.catchAll(effect, (e) => (e instanceof SqlError ? Effect.die(e) : Effect.fail(e as Exclude<E, SqlError>)))

const validateDependencies = (
  sql: Sql,
  items: ReadonlyArray<NewTask>
): Effect.Effect<Either.Either<ReadonlyArray<NewTask>, NotFound | InvalidInput>, SqlError> =>
  Effect.gen(function* () {
    const own = new Map<TaskId, string>()
    const outside = new Set<TaskId>()
    for (const item of items) {
      for (const dep of item.dependsOn) if (!own.has(dep)) outside.add(dep)
      own.set(item.id, item.projectId)
    }
    const known = outside.size > 0 ? yield* lookupProjects(sql, [...outside]) : new Map<TaskId, string>()
    const seen = new Map<TaskId, string>()
    for (const item of items) {
      for (const dep of item.dependsOn) {
        const project = seen.get(dep) ?? known.get(dep)
        if (project === undefined) return Either.left(new NotFound({ entity: "task", id: dep }))
        if (project !== item.projectId) {
          return Either.left(new InvalidInput({ reason: `dependency ${dep} belongs to another project than ${item.id}` }))
        }
      }
      seen.set(item.id, item.projectId)
    }
    return Either.right(items)
  })

const runBatch = (sql: Sql, ops: ReadonlyArray<Op>, fx: BatchEffects) =>
  Effect.gen(function* () {
    const results: Results = new Array(ops.length)
    const enqueues: Array<[number, ReadonlyArray<NewTask>]> = []
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!
      if (op._tag !== "Enqueue") continue
      const valid = op.items.some((t) => t.dependsOn.length > 0)
        ? yield* validateDependencies(sql, op.items)
        : Either.right<ReadonlyArray<NewTask>>(op.items)
      if (Either.isLeft(valid)) results[i] = Exit.fail(valid.left)
      else enqueues.push([i, valid.right])
    }
    if (enqueues.length > 0) {
      const inserted = yield* insertTasks(
        sql,
        fx,
        enqueues.flatMap(([, items]) => items)
      )
      for (const [i, items] of enqueues) {
        results[i] = Exit.succeed(
          items.map((item) => {
            const task = inserted.get(item.id)!
            return fx.latest.get(task.id) ?? task
          })
        )
      }
    }
    const released = fx.ended.length

    const completes = ops.flatMap((op, i) => (op._tag === "Complete" ? [[i, op.items] as const] : []))
    if (completes.length > 0) {
      const outcomes = yield* completeMany(
        sql,
        fx,
        completes.flatMap(([, items]) => items)
      )
      let at = 0
      for (const [i, items] of completes) {
        results[i] = Exit.succeed(outcomes.slice(at, at + items.length))
        at += items.length
      }
    }

    const beats = ops.flatMap((op, i) => (op._tag === "Heartbeat" ? [[i, op.item] as const] : []))
    if (beats.length > 0) {
      const outcomes = yield* heartbeatMany(
        sql,
        fx,
        beats.map(([, item]) => item)
      )
      beats.forEach(([i], k) => (results[i] = outcomes[k]!))
    }

    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!
      if (op._tag === "Run") results[i] = yield* Effect.exit(sqlDies(op.run(fx)))
    }

    if (fx.ended.length > released) yield* release(sql, fx, [], fx.ended.slice(released))

    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!
      if (op._tag === "Lease") results[i] = Exit.succeed(yield* lease(sql, fx, op.request))
    }
    return results
  })

export interface GroupCommitOptions {
  /** Items the backlog holds at most before callers wait (default MAX_BACKLOG). */
  readonly maxBacklog?: number
  /**
   * Runs after `afterCommit` and after every caller of the batch got its outcome (and their fibers
   * had a turn): slower follow-ups such as logging events, kept off the callers' path. Still on the
   * writer, so batches publish in commit order.
   */
  readonly publish?: (fx: BatchEffects) => Effect.Effect<void>
  /** The batch's last statements, in its transaction (e.g. NOTIFYs that go out when it commits). */
  readonly beforeCommit?: (fx: BatchEffects) => Effect.Effect<void, SqlError>
}

/**
 * On PostgreSQL several hubs may run a writer on one database: each batch first takes this
 * transaction-scoped advisory lock, so batches commit one at a time cluster-wide and each sees every
 * earlier one (READ COMMITTED: every statement after the lock reads what was committed before it).
 * That keeps the single-writer invariants (concurrency limits, dependency release, fencing, retries,
 * reaping) across hubs. SQLite has one writer per file already.
 */
export const WRITER_LOCK = "kiris.queue.writer"
const lockWriter = (sql: Sql): Effect.Effect<void, SqlError> =>
  sql.onDialectOrElse({
    pg: () => Effect.asVoid(sql`SELECT pg_advisory_xact_lock(hashtext(${WRITER_LOCK}))`),
    orElse: () => Effect.void
  })

export const makeGroupCommit = (
  sql: Sql,
  afterCommit: (fx: BatchEffects) => Effect.Effect<void>,
  hot: ReadonlyMap<TaskId, Task> = new Map(),
  options: GroupCommitOptions = {}
) =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const maxBacklog = Math.max(1, Math.floor(options.maxBacklog ?? MAX_BACKLOG))
    const publish = options.publish
    const beforeCommit = options.beforeCommit
    const transaction = (ops: ReadonlyArray<Op>, fx: BatchEffects) =>
      sql.withTransaction(
        lockWriter(sql).pipe(
          Effect.zipRight(runBatch(sql, ops, fx)),
          Effect.tap(() => (beforeCommit === undefined ? Effect.void : beforeCommit(fx)))
        )
      )
    /** Operations waiting for the writer, oldest first, with their weights. */
    let pending: Array<Op> = []
    let weights: Array<number> = []
    let backlog = 0
    let peakBacklog = 0
    let closed = false
    const room = yield* Effect.makeSemaphore(maxBacklog)
    const work = yield* Effect.makeLatch(false)
    const shutdownError = () => new Error("the task queue is shutting down")

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        const left = pending
        pending = []
        weights = []
        backlog = 0
        for (const op of left) Deferred.unsafeDone(op.done as unknown as Deferred.Deferred<unknown, unknown>, Exit.die(shutdownError()))
      }).pipe(Effect.zipRight(room.releaseAll))
    )

    /** The next batch: what is pending, up to the limits; waits (no timer) while there is nothing. */
    const nextBatch: Effect.Effect<Array<Op>> = Effect.suspend(() => {
      if (pending.length === 0) {
        work.unsafeClose()
        return Effect.zipRight(work.await, nextBatch)
      }
      let n = 0
      let items = 0
      while (n < pending.length && n < MAX_OPS && (n === 0 || items + weights[n]! <= MAX_BATCH_ITEMS)) items += weights[n++]!
      const ops = n === pending.length ? pending : pending.slice(0, n)
      if (n === pending.length) {
        pending = []
        weights = []
      } else {
        pending = pending.slice(n)
        weights = weights.slice(n)
      }
      backlog -= items
      return Effect.as(room.release(items), ops)
    })
    const resolve = (ops: ReadonlyArray<Op>, results: Results) => {
      for (let i = 0; i < ops.length; i++) Deferred.unsafeDone(ops[i]!.done as unknown as Deferred.Deferred<unknown, unknown>, results[i]!)
    }

    const process = (ops: ReadonlyArray<Op>): Effect.Effect<void> =>
      Effect.gen(function* () {
        const fx = new BatchEffects(yield* Clock.currentTimeMillis, hot)
        const exit = yield* Effect.exit(transaction(ops, fx))
        if (Exit.isSuccess(exit)) {
          yield* afterCommit(fx).pipe(
            Effect.catchAllCause((cause) => Effect.logError("task queue: post-commit step failed", cause)),
            Effect.ensuring(Effect.sync(() => resolve(ops, exit.value)))
          )
          if (publish !== undefined) {
            // let the replies and pushes of this batch go out before the slower follow-ups
            yield* Effect.yieldNow()
            yield* publish(fx).pipe(Effect.catchAllCause((cause) => Effect.logError("task queue: publishing a batch failed", cause)))
          }
          return
        }
        if (ops.length > 1 && !Cause.isInterruptedOnly(exit.cause)) {
          yield* Effect.forEach(ops, (op) => process([op]), { discard: true })
          return
        }
        const failure = Exit.die(Cause.squash(exit.cause))
        resolve(
          ops,
          ops.map(() => failure)
        )
      })

    yield* nextBatch.pipe(
      Effect.flatMap((ops) =>
        process(ops).pipe(
          Effect.catchAllCause((cause) =>
            Effect.zipRight(
              Effect.logError("task queue: batch failed", cause),
              Effect.sync(() =>
                resolve(
                  ops,
                  ops.map(() => Exit.die(Cause.squash(cause)))
                )
              )
            )
          )
        )
      ),
      Effect.forever,
      Effect.withTracerEnabled(false),
      Effect.forkScoped
    )

    /**
     * Runs the operation built around a fresh Deferred in the next group commit and awaits its outcome.
     * If the caller is interrupted meanwhile, the operation still commits; `abandoned` then gets its result.
     */
    const submit = <A, E>(make: (done: Deferred.Deferred<A, E>) => Op, abandoned?: (a: A) => Effect.Effect<void>): Effect.Effect<A, E> =>
      Effect.flatMap(Deferred.make<A, E>(), (done) =>
        Effect.zipRight(
          enter(make(done)),
          abandoned === undefined
            ? Deferred.await(done)
            : Deferred.await(done).pipe(
                Effect.onInterrupt(() => Deferred.await(done).pipe(Effect.flatMap(abandoned), Effect.ignore, Effect.forkIn(scope)))
              )
        )
      )

    /** Adds `op` to the backlog once there is room for it (waiting, interruptibly, while there is none). */
    const enter = (op: Op): Effect.Effect<void> => {
      const weight = Math.min(weightOf(op), maxBacklog)
      const add = Effect.sync(() => {
        if (closed) {
          Deferred.unsafeDone(op.done as unknown as Deferred.Deferred<unknown, unknown>, Exit.die(shutdownError()))
          return
        }
        pending.push(op)
        weights.push(weight)
        backlog += weight
        if (backlog > peakBacklog) peakBacklog = backlog
        work.unsafeOpen()
      })
      return Effect.uninterruptibleMask((restore) => Effect.zipRight(restore(room.take(weight)), add))
    }

    const run = <A, E>(f: (fx: BatchEffects) => Effect.Effect<A, E | SqlError>): Effect.Effect<A, Exclude<E, SqlError>> =>
      submit<A, Exclude<E, SqlError>>((done) => ({
        _tag: "Run",
        run: f as (fx: BatchEffects) => Effect.Effect<unknown, unknown>,
        done: done as Deferred.Deferred<unknown, unknown>
      }))

    return {
      submit,
      run,
      /** Items waiting for the writer now, and the most there ever were (never above `maxBacklog`). */
      backlog: () => backlog,
      peakBacklog: () => peakBacklog,
      maxBacklog
    } as const
  })
