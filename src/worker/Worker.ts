import {
  Cause,
  Clock,
  Console,
  Data,
  Deferred,
  Duration,
  Effect,
  Exit,
  ExecutionStrategy,
  Fiber,
  Option,
  Queue,
  Ref,
  Schedule,
  Scope,
  Stream,
  SubscriptionRef
} from "effect"
import type { TaskId } from "../domain/Ids.js"
import type { WorkerPush } from "../domain/rpc/WorkerRpcs.js"
import type { Lease, TaskKind } from "../domain/Task.js"
import { continueTrace } from "../runtime/Tracing.js"
import { Executors } from "./Executors.js"
import { describe, isTransport } from "./HubErrors.js"
import { formatMs } from "../runtime/ProcessRunner.js"
import { makeRegistration } from "./Registration.js"
import { makeReporting } from "./Reporting.js"
import { type RunningTask, stop } from "./RunningTask.js"
import type { WorkerClient } from "./WorkerClient.js"

/**
 * A swarm worker: registers with the hub over `worker.connect`, leases tasks when the hub pushes
 * WorkAvailable (once on connect, and whenever a slot frees up), runs up to `concurrency` of them,
 * heartbeats each at a third of the lease, reports each with its fencing token, and reconnects with
 * exponential backoff when the hub goes away, keeping its running tasks and its worker id (to the same
 * hub, or to another one sharing its database when the client was given several). The hub
 * accepts calls on a lease only from the connection the worker is registered on, so those calls
 * wait while the worker is not registered. Closing its scope stops leasing, lets running tasks
 * finish for `graceMs`, then fails the rest as retryable. A `Drain` push from the hub stops leasing
 * too, but waits for every running task, however long, and reports it; then `runWorker` succeeds.
 */

export type { WorkerClient }

export interface WorkerSettings {
  readonly name: string
  readonly kinds: ReadonlyArray<TaskKind>
  readonly concurrency: number
  /** Asked for on each lease; the hub's default when undefined. */
  readonly leaseSeconds?: number | undefined
  readonly graceMs: number
  /** No per-task log lines. */
  readonly quiet: boolean
  /** The address of the hub the client is connected to, for log lines (one of several when hubs share a database). */
  readonly connectedTo?: (() => string | undefined) | undefined
}

/** The hub refused this worker (bad token, missing worker scope): retrying cannot help. */
export class WorkerRejected extends Data.TaggedError("WorkerRejected")<{ readonly message: string }> {}

/** No registration came of a connection attempt: try again after a while. */
class Unreachable extends Data.TaggedError("Unreachable")<{}> {}

const clock = () => new Date().toISOString().slice(11, 19)

/** Reconnect delays: 250 ms doubling up to 10 s, each jittered (±20%). */
const reconnectBackoff = Schedule.exponential(Duration.millis(250)).pipe(Schedule.union(Schedule.spaced(Duration.seconds(10))), Schedule.jittered)

/** Checks `done` now and then every `every`, until it holds or `within` has passed (then gives up quietly). */
const pollUntil = (done: Effect.Effect<boolean>, every: Duration.DurationInput, within: Duration.DurationInput = Duration.infinity) =>
  Effect.asVoid(Effect.repeat(done, { until: (ok) => ok, schedule: Schedule.spaced(every).pipe(Schedule.upTo(within)) }))

export const runWorker = (client: WorkerClient, settings: WorkerSettings) =>
  Effect.gen(function* () {
    const executors = yield* Executors
    const scope = yield* Scope.Scope
    const log = (line: string) => Console.log(`${clock()} ${settings.name} ${line}`)
    const taskLog = (line: string) => (settings.quiet ? Effect.void : log(line))

    const running = new Map<TaskId, RunningTask>()
    const registration = yield* makeRegistration
    const { nextSession, session, sessionChanged, workerId } = registration
    const draining = yield* Ref.make(false)
    /** Completed once a drain asked for by the hub is over (nothing running, every report sent). */
    const drained = yield* Deferred.make<void>()
    const hubLeaseSeconds = yield* Ref.make(300)
    const wake = yield* Queue.sliding<void>(1)
    const tasksScope = yield* Scope.fork(scope, ExecutionStrategy.parallel)

    const leaseMs = Effect.map(Ref.get(hubLeaseSeconds), (s) => (settings.leaseSeconds ?? s) * 1000)
    const reportWindowMs = Effect.gen(function* () {
      return (yield* Ref.get(draining)) ? 15_000 : Math.max(60_000, 2 * (yield* leaseMs))
    })

    const { complete, flush, pendingCompletions, report } = yield* makeReporting({
      client,
      workerName: settings.name,
      registration,
      reportWindowMs,
      log,
      taskLog
    })

    /**
     * One beat for one task (only while registered): a cancelled task or a lost lease stops it; a
     * transport error, or a refusal while the session changed, waits for the next round.
     */
    const beat = (task: RunningTask) =>
      Effect.gen(function* () {
        const n = yield* SubscriptionRef.get(session)
        const id = yield* Ref.get(workerId)
        if (n === 0 || id === undefined) return
        task.lastBeatAt = yield* Clock.currentTimeMillis
        const { task: t, fencingToken } = task.lease
        const result = yield* Effect.either(client.task.heartbeat({ workerId: id, taskId: t.id, fencingToken }))
        if (result._tag === "Right") {
          if (result.right.cancelled) yield* stop(task, "cancelled")
        } else if ((result.left._tag === "LeaseLost" || result.left._tag === "NotFound") && !(yield* sessionChanged(n))) {
          yield* stop(task, "lease-lost")
        }
      })

    /**
     * Renews every running task's lease about every third of the lease, from one fiber for the whole
     * worker: one round beats the tasks due and returns how long until the next round.
     */
    const heartbeats = Effect.gen(function* () {
      const every = Math.max(250, Math.floor((yield* leaseMs) / 3))
      const now = yield* Clock.currentTimeMillis
      const due = [...running.values()].filter((task) => task.fiber !== undefined && now - task.lastBeatAt >= every - 50)
      yield* Effect.forEach(due, beat, { concurrency: "unbounded", discard: true })
      return Duration.millis(Math.min(Math.floor(every / 2), 1000))
    })

    /** `noop` has nothing to run: it completes inline, without a task fiber (the queue benchmark's fast path). */
    const completeNoop = (lease: Lease) =>
      Effect.gen(function* () {
        const t = lease.task
        const result = { echo: t.payload, createdAt: t.createdAt, receivedAt: yield* Clock.currentTimeMillis }
        yield* complete({ taskId: t.id, fencingToken: lease.fencingToken, result })
        yield* taskLog(`done ${t.id} noop`)
      }).pipe(runSpan(lease))

    /** A traced task's run, in the trace its hub started at enqueue (child of the lease's span). */
    const runSpan = (lease: Lease) =>
      continueTrace(lease.traceparent, "task.run", {
        "kiris.task_id": lease.task.id,
        "kiris.task_kind": lease.task.kind,
        "kiris.attempt": lease.task.attempts,
        "kiris.worker": settings.name
      })

    const start = (lease: Lease) =>
      Effect.gen(function* () {
        const t = lease.task
        if (t.kind === "noop") return yield* completeNoop(lease)
        const now = yield* Clock.currentTimeMillis
        const task: RunningTask = { lease, startedAt: now, lastBeatAt: now, fiber: undefined, reason: undefined }
        running.set(t.id, task)
        yield* taskLog(`start ${t.id} ${t.kind}${t.attempts > 1 ? ` (attempt ${t.attempts})` : ""}`)
        /** Parts are best effort: dropped while not registered, like those lost in transport. */
        const progress = (parts: ReadonlyArray<unknown>) =>
          Effect.gen(function* () {
            const n = yield* SubscriptionRef.get(session)
            const id = yield* Ref.get(workerId)
            if (n === 0 || id === undefined) return
            const result = yield* Effect.either(client.task.progress({ workerId: id, taskId: t.id, fencingToken: lease.fencingToken, parts }))
            if (result._tag === "Left" && (result.left._tag === "LeaseLost" || result.left._tag === "NotFound") && !(yield* sessionChanged(n))) {
              yield* stop(task, "lease-lost")
            }
          })
        const input = {
          taskId: t.id,
          projectId: t.projectId,
          kind: t.kind,
          payload: t.payload,
          inputs: lease.inputs,
          dependencies: lease.dependencies,
          createdAt: t.createdAt,
          progress
        }
        task.fiber = yield* executors.run(input).pipe(
          Effect.onExit((exit) => report(task, exit)),
          runSpan(lease),
          Effect.ensuring(Effect.sync(() => running.delete(t.id)).pipe(Effect.zipRight(Queue.offer(wake, undefined)))),
          Effect.forkIn(tasksScope)
        )
        if (task.reason !== undefined) yield* Fiber.interruptFork(task.fiber)
      })

    // == leasing: only when woken (connect, WorkAvailable, a freed slot), never in a loop of its own
    const leaseOnce = Effect.gen(function* () {
      const id = yield* Ref.get(workerId)
      if (id === undefined || (yield* SubscriptionRef.get(session)) === 0 || (yield* Ref.get(draining))) return
      const free = settings.concurrency - running.size
      if (free <= 0) return
      const leases = yield* client.task
        .lease({
          workerId: id,
          kinds: settings.kinds,
          max: free,
          ...(settings.leaseSeconds === undefined ? {} : { leaseSeconds: settings.leaseSeconds })
        })
        .pipe(Effect.catchAll((e) => (isTransport(e) ? Effect.succeed([]) : log(`lease failed: ${describe(e)}`).pipe(Effect.as([])))))
      for (const lease of leases) yield* start(lease)
      // a full batch means more may be waiting (noop tasks complete inline and keep their slots free)
      if (leases.length === free) yield* Queue.offer(wake, undefined)
    })

    const onPush = (push: WorkerPush) =>
      Effect.gen(function* () {
        switch (push._tag) {
          case "Registered": {
            const before = yield* Ref.getAndSet(workerId, push.workerId)
            yield* Ref.set(hubLeaseSeconds, push.leaseSeconds)
            yield* SubscriptionRef.set(session, nextSession())
            const via = settings.connectedTo?.()
            yield* log(
              `${before === undefined ? "connected" : "reconnected"} as ${push.workerId} (${settings.kinds.join(",")} x${settings.concurrency})${via === undefined ? "" : ` via ${via}`}`
            )
            return yield* Queue.offer(wake, undefined)
          }
          case "WorkAvailable":
            return yield* Queue.offer(wake, undefined)
          case "CancelTask": {
            const task = running.get(push.taskId)
            return task === undefined ? undefined : yield* stop(task, "cancelled")
          }
          case "Drain": {
            if (yield* Ref.getAndSet(draining, true)) return
            yield* log(`draining: finishing ${running.size} running task(s), leasing no new ones`)
            yield* Effect.forkIn(drainRequested, scope)
            return
          }
        }
      })

    /** Nothing running and every report sent: the end of a drain. */
    const idle = Effect.gen(function* () {
      return running.size === 0 && (yield* Ref.get(pendingCompletions)) === 0
    })

    const drainRequested = Effect.gen(function* () {
      const since = yield* Clock.currentTimeMillis
      yield* pollUntil(idle, "50 millis")
      yield* log(`drained in ${formatMs((yield* Clock.currentTimeMillis) - since)}: no tasks left; exiting`)
      yield* Deferred.succeed(drained, undefined)
    })

    const connectOnce = Effect.gen(function* () {
      const id = yield* Ref.get(workerId)
      yield* client.worker
        .connect({ name: settings.name, kinds: settings.kinds, capacity: settings.concurrency, ...(id === undefined ? {} : { workerId: id }) })
        .pipe(Stream.runForEach(onPush))
    })

    /** Hub unreachable since the last registration (the first one is logged, the rest are retried quietly). */
    let unreachable = 0

    /**
     * One connection: registers and serves pushes until it ends. Succeeds once a registration was
     * lost (reconnect soon), fails `Unreachable` when none happened (back off), or `WorkerRejected`.
     */
    const connectionRound = Effect.gen(function* () {
      const exit = yield* Effect.exit(connectOnce)
      const wasConnected = (yield* SubscriptionRef.getAndSet(session, 0)) > 0
      const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
      if (Option.isSome(failure) && !isTransport(failure.value)) {
        return yield* new WorkerRejected({ message: `the hub refused this worker: ${describe(failure.value)}` })
      }
      if (wasConnected) {
        unreachable = 0
        return yield* log("hub connection lost; reconnecting")
      }
      if (++unreachable === 1) {
        const why = Option.isSome(failure) ? `: ${describe(failure.value)}` : ""
        yield* log(`cannot reach the hub${why}; retrying with backoff`)
      }
      return yield* new Unreachable()
    })

    /** Connects, reconnecting with backoff (reset by every registration) until the hub rejects the worker. */
    const connectLoop = connectionRound.pipe(
      Effect.retry({ schedule: reconnectBackoff, while: (e) => e._tag === "Unreachable" }),
      Effect.repeat(Schedule.spaced(Duration.millis(250)).pipe(Schedule.jittered)),
      Effect.catchTag("Unreachable", () => Effect.dieMessage("reconnecting stopped")),
      Effect.zipRight(Effect.never)
    )

    const drain = Effect.gen(function* () {
      yield* Ref.set(draining, true)
      if ((yield* Deferred.isDone(drained)) && (yield* idle)) return
      if (running.size > 0) yield* log(`stopping: waiting up to ${formatMs(settings.graceMs)} for ${running.size} running task(s)`)
      yield* pollUntil(
        Effect.sync(() => running.size === 0),
        "50 millis",
        Duration.millis(settings.graceMs)
      )
      const left = [...running.values()]
      if (left.length > 0) {
        yield* log(`stopping: releasing ${left.length} unfinished task(s) for retry`)
        for (const task of left) task.reason ??= "shutdown"
        yield* Effect.forEach(left, (task) => (task.fiber === undefined ? Effect.void : Fiber.interrupt(task.fiber)), {
          concurrency: "unbounded",
          discard: true
        })
      }
      yield* pollUntil(
        Effect.map(Ref.get(pendingCompletions), (n) => n === 0),
        "20 millis",
        Duration.seconds(15)
      )
      yield* log("stopped")
    })

    /** A background loop that survives a bad round (a defect is logged, the loop goes on). */
    const loop = (what: string, round: Effect.Effect<void>) =>
      Effect.forkIn(Effect.forever(Effect.catchAllDefect(round, (d) => log(`${what} failed: ${describe(d)}`))), scope)
    yield* loop("reporting completions", flush)
    yield* loop("leasing", Effect.zipRight(Queue.take(wake), leaseOnce))
    yield* Effect.forkIn(
      Effect.repeat(
        Effect.catchAllDefect(heartbeats, (d) => Effect.as(log(`heartbeat failed: ${describe(d)}`), Duration.seconds(1))),
        Schedule.identity<Duration.Duration>().pipe(Schedule.addDelay((next) => next))
      ),
      scope
    )
    // a slow safety net in case a push was missed while a lease was in flight
    yield* Effect.forkIn(Effect.repeat(Queue.offer(wake, undefined), Schedule.spaced(Duration.seconds(30))), scope)
    // The registration (the connect stream) outlives the drain: the hub takes the drained tasks'
    // reports only from the connection the worker is registered on.
    const connection = yield* Effect.forkIn(connectLoop, scope)
    yield* Effect.addFinalizer(() => drain)
    // runs until the worker is rejected, or until a drain asked for by the hub is over
    return yield* Effect.raceFirst(Fiber.join(connection), Deferred.await(drained))
  })
