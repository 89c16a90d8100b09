import type { RpcClient } from "@effect/rpc"
import type { RpcClientError } from "@effect/rpc/RpcClientError"
import { Console, Data, Duration, Effect, Exit, ExecutionStrategy, Fiber, Queue, Ref, Schedule, Scope, Stream } from "effect"
import type { TaskId, WorkerId } from "../domain/Ids.js"
import type { WorkerRpcs, WorkerPush } from "../domain/rpc/WorkerRpcs.js"
import type { Lease, TaskKind } from "../domain/Task.js"
import { Executors } from "./Executors.js"
import { formatMs } from "./Process.js"
import type { TaskFailure } from "./TaskFailure.js"

/**
 * A swarm worker: registers with the hub over `worker.connect`, leases tasks when the hub pushes
 * WorkAvailable (once on connect, and whenever a slot frees up), runs up to `concurrency` of them,
 * heartbeats each at a third of the lease, reports each with its fencing token, and reconnects with
 * exponential backoff when the hub goes away, keeping its running tasks and its worker id. Closing
 * its scope stops leasing, lets running tasks finish for `graceMs`, then fails the rest as retryable.
 */

export type WorkerClient = RpcClient.FromGroup<typeof WorkerRpcs, RpcClientError>

export interface WorkerSettings {
  readonly name: string
  readonly kinds: ReadonlyArray<TaskKind>
  readonly concurrency: number
  /** Asked for on each lease; the hub's default when undefined. */
  readonly leaseSeconds?: number | undefined
  readonly graceMs: number
  /** No per-task log lines. */
  readonly quiet: boolean
}

/** The hub refused this worker (bad token, missing worker scope): retrying cannot help. */
export class WorkerRejected extends Data.TaggedError("WorkerRejected")<{ readonly message: string }> {}

type StopReason = "cancelled" | "lease-lost" | "shutdown"

interface RunningTask {
  readonly lease: Lease
  readonly startedAt: number
  fiber: Fiber.RuntimeFiber<unknown, TaskFailure> | undefined
  reason: StopReason | undefined
}

interface Completion {
  readonly taskId: TaskId
  readonly fencingToken: number
  readonly result: unknown
}

const clock = () => new Date().toISOString().slice(11, 19)

const isTransport = (e: unknown) => typeof e === "object" && e !== null && (e as { _tag?: unknown })._tag === "RpcClientError"

const describe = (e: unknown): string => {
  if (typeof e !== "object" || e === null) return String(e)
  const tagged = e as { _tag?: string; message?: unknown; reason?: unknown }
  const detail = typeof tagged.reason === "string" ? tagged.reason : typeof tagged.message === "string" ? tagged.message : ""
  return tagged._tag === undefined ? detail : detail === "" ? tagged._tag : `${tagged._tag}: ${detail}`
}

/** Retries hub calls that failed in transport (the hub is away) with backoff, for at most `forMs`. */
const retryTransport = <A, E, R>(effect: Effect.Effect<A, E, R>, forMs: number) =>
  effect.pipe(
    Effect.retry({
      schedule: Schedule.exponential("200 millis").pipe(Schedule.union(Schedule.spaced("5 seconds")), Schedule.upTo(Duration.millis(forMs))),
      while: isTransport
    })
  )

export const runWorker = (client: WorkerClient, settings: WorkerSettings) =>
  Effect.gen(function* () {
    const executors = yield* Executors
    const scope = yield* Scope.Scope
    const log = (line: string) => Console.log(`${clock()} ${settings.name} ${line}`)
    const taskLog = (line: string) => (settings.quiet ? Effect.void : log(line))

    const running = new Map<TaskId, RunningTask>()
    const workerId = yield* Ref.make<WorkerId | undefined>(undefined)
    const connected = yield* Ref.make(false)
    const draining = yield* Ref.make(false)
    const hubLeaseSeconds = yield* Ref.make(300)
    const pendingCompletions = yield* Ref.make(0)
    const wake = yield* Queue.sliding<void>(1)
    const completions = yield* Queue.unbounded<Completion>()
    const tasksScope = yield* Scope.fork(scope, ExecutionStrategy.parallel)

    const leaseMs = Effect.map(Ref.get(hubLeaseSeconds), (s) => (settings.leaseSeconds ?? s) * 1000)
    const reportWindowMs = Effect.gen(function* () {
      return (yield* Ref.get(draining)) ? 15_000 : Math.max(60_000, 2 * (yield* leaseMs))
    })

    const stop = (task: RunningTask, reason: StopReason) =>
      Effect.suspend(() => {
        task.reason ??= reason
        return task.fiber === undefined ? Effect.void : Fiber.interruptFork(task.fiber)
      })

    // == completions: one `task.completeBatch` for whatever finished meanwhile
    const flush = Effect.gen(function* () {
      const batch = yield* Queue.takeBetween(completions, 1, 1000)
      const items = [...batch]
      const outcomes = yield* retryTransport(client.task.completeBatch({ items }), yield* reportWindowMs).pipe(
        Effect.catchAll((e) => log(`could not report ${items.length} completion(s): ${describe(e)}`).pipe(Effect.as([])))
      )
      for (const o of outcomes) if (!o.ok) yield* log(`completion of ${o.taskId} refused: ${o.error ?? "unknown"}`)
      yield* Ref.update(pendingCompletions, (n) => n - items.length)
    })

    const report = (task: RunningTask, exit: Exit.Exit<unknown, TaskFailure>) =>
      Effect.gen(function* () {
        const { task: t, fencingToken } = task.lease
        const took = formatMs(Date.now() - task.startedAt)
        if (Exit.isSuccess(exit)) {
          yield* Ref.update(pendingCompletions, (n) => n + 1)
          yield* Queue.offer(completions, { taskId: t.id, fencingToken, result: exit.value })
          return yield* taskLog(`done ${t.id} ${t.kind} ${took}`)
        }
        if (task.reason === "cancelled" || task.reason === "lease-lost") {
          return yield* taskLog(`${task.reason === "cancelled" ? "cancelled" : "lease lost"} ${t.id} ${t.kind} ${took}`)
        }
        const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
        const interrupted = failure === undefined && Exit.isInterrupted(exit)
        const message =
          failure?.message ??
          (interrupted ? `worker ${settings.name} stopped before the task finished` : `worker error: ${describe(exit.cause.toJSON())}`)
        const retryable = failure?.retryable ?? true
        yield* taskLog(`failed ${t.id} ${t.kind} ${took}${retryable ? "" : " (permanent)"}: ${message.split("\n")[0]}`)
        yield* retryTransport(client.task.fail({ taskId: t.id, fencingToken, message, retryable }), yield* reportWindowMs).pipe(
          Effect.catchAll((e) => log(`could not report the failure of ${t.id}: ${describe(e)}`))
        )
      })

    const heartbeat = (task: RunningTask) =>
      Effect.gen(function* () {
        const every = Duration.millis(Math.max(250, Math.floor((yield* leaseMs) / 3)))
        for (;;) {
          yield* Effect.sleep(every)
          const { task: t, fencingToken } = task.lease
          const beat = yield* Effect.either(client.task.heartbeat({ taskId: t.id, fencingToken }))
          if (beat._tag === "Right") {
            if (beat.right.cancelled) return yield* stop(task, "cancelled")
          } else if (beat.left._tag === "LeaseLost" || beat.left._tag === "NotFound") {
            return yield* stop(task, "lease-lost")
          }
        }
      })

    const start = (lease: Lease) =>
      Effect.gen(function* () {
        const t = lease.task
        const task: RunningTask = { lease, startedAt: Date.now(), fiber: undefined, reason: undefined }
        running.set(t.id, task)
        yield* taskLog(`start ${t.id} ${t.kind}${t.attempts > 1 ? ` (attempt ${t.attempts})` : ""}`)
        const input = { taskId: t.id, kind: t.kind, payload: t.payload, inputs: lease.inputs, createdAt: t.createdAt }
        // the heartbeat is a child of the task's fiber, so it ends with it
        task.fiber = yield* Effect.zipRight(Effect.fork(heartbeat(task)), executors.run(input)).pipe(
          Effect.onExit((exit) => report(task, exit)),
          Effect.ensuring(Effect.sync(() => running.delete(t.id)).pipe(Effect.zipRight(Queue.offer(wake, undefined)))),
          Effect.forkIn(tasksScope)
        )
        if (task.reason !== undefined) yield* Fiber.interruptFork(task.fiber)
      })

    // == leasing: only when woken (connect, WorkAvailable, a freed slot), never in a loop of its own
    const leaseOnce = Effect.gen(function* () {
      const id = yield* Ref.get(workerId)
      if (id === undefined || !(yield* Ref.get(connected)) || (yield* Ref.get(draining))) return
      const free = settings.concurrency - running.size
      if (free <= 0) return
      const leases = yield* client.task
        .lease({ workerId: id, kinds: settings.kinds, max: free, ...(settings.leaseSeconds === undefined ? {} : { leaseSeconds: settings.leaseSeconds }) })
        .pipe(Effect.catchAll((e) => (isTransport(e) ? Effect.succeed([]) : log(`lease failed: ${describe(e)}`).pipe(Effect.as([])))))
      for (const lease of leases) yield* start(lease)
    })

    const onPush = (push: WorkerPush) =>
      Effect.gen(function* () {
        switch (push._tag) {
          case "Registered": {
            const before = yield* Ref.getAndSet(workerId, push.workerId)
            yield* Ref.set(hubLeaseSeconds, push.leaseSeconds)
            yield* Ref.set(connected, true)
            yield* log(`${before === undefined ? "connected" : "reconnected"} as ${push.workerId} (${settings.kinds.join(",")} x${settings.concurrency})`)
            return yield* Queue.offer(wake, undefined)
          }
          case "WorkAvailable":
            return yield* Queue.offer(wake, undefined)
          case "CancelTask": {
            const task = running.get(push.taskId)
            return task === undefined ? undefined : yield* stop(task, "cancelled")
          }
        }
      })

    const session = Effect.gen(function* () {
      const id = yield* Ref.get(workerId)
      yield* client.worker
        .connect({ name: settings.name, kinds: settings.kinds, capacity: settings.concurrency, ...(id === undefined ? {} : { workerId: id }) })
        .pipe(Stream.runForEach(onPush))
    })

    const connectLoop = Effect.gen(function* () {
      let attempt = 0
      for (;;) {
        const exit = yield* Effect.exit(session)
        const wasConnected = yield* Ref.getAndSet(connected, false)
        if (Exit.isFailure(exit) && exit.cause._tag === "Fail" && !isTransport(exit.cause.error)) {
          return yield* new WorkerRejected({ message: `the hub refused this worker: ${describe(exit.cause.error)}` })
        }
        if (wasConnected) attempt = 0
        const base = Math.min(10_000, 250 * 2 ** attempt)
        const delay = Math.round(base / 2 + (Math.random() * base) / 2)
        attempt = Math.min(attempt + 1, 10)
        if (wasConnected || attempt === 1) yield* log(`hub connection lost; reconnecting (next try in ${formatMs(delay)})`)
        yield* Effect.sleep(Duration.millis(delay))
      }
    })

    const drain = Effect.gen(function* () {
      yield* Ref.set(draining, true)
      const deadline = Date.now() + settings.graceMs
      if (running.size > 0) yield* log(`stopping: waiting up to ${formatMs(settings.graceMs)} for ${running.size} running task(s)`)
      while (running.size > 0 && Date.now() < deadline) yield* Effect.sleep("50 millis")
      const left = [...running.values()]
      if (left.length > 0) {
        yield* log(`stopping: releasing ${left.length} unfinished task(s) for retry`)
        for (const task of left) task.reason ??= "shutdown"
        yield* Effect.forEach(left, (task) => (task.fiber === undefined ? Effect.void : Fiber.interrupt(task.fiber)), { concurrency: "unbounded", discard: true })
      }
      const flushDeadline = Date.now() + 15_000
      while ((yield* Ref.get(pendingCompletions)) > 0 && Date.now() < flushDeadline) yield* Effect.sleep("20 millis")
      yield* log("stopped")
    })

    yield* Effect.forkIn(Effect.forever(flush), scope)
    yield* Effect.forkIn(Effect.forever(Effect.zipRight(Queue.take(wake), leaseOnce)), scope)
    // a slow safety net in case a push was missed while a lease was in flight
    yield* Effect.forkIn(Effect.forever(Effect.zipRight(Effect.sleep("30 seconds"), Queue.offer(wake, undefined))), scope)
    yield* Effect.addFinalizer(() => drain)
    return yield* connectLoop
  })
