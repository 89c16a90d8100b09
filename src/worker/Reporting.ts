import { Cause, Clock, Duration, Effect, Exit, Option, Queue, Ref } from "effect"
import type { TaskId } from "../domain/Ids.js"
import { describe, retryTransport } from "./HubErrors.js"
import { formatMs } from "../runtime/ProcessRunner.js"
import type { Registration } from "./Registration.js"
import type { RunningTask } from "./RunningTask.js"
import type { TaskFailure } from "./TaskFailure.js"
import type { WorkerClient } from "./WorkerClient.js"

export interface Completion {
  readonly taskId: TaskId
  readonly fencingToken: number
  readonly result: unknown
}

/**
 * Completions kept while they cannot be sent (the hub is away); beyond it a finishing task waits for
 * room, holding its slot, so the worker leases nothing new meanwhile.
 */
export const MAX_BUFFERED_COMPLETIONS = 1000

/**
 * Reporting how tasks ended: completions are queued and sent in batches (`flush`, one
 * `task.completeBatch` for whatever finished meanwhile); a failure is reported on its own. Both
 * wait while the worker is not registered and retry while the hub is away, for at most
 * `reportWindowMs`, and go to whichever hub the worker registers with next. `pendingCompletions`
 * counts those not yet sent.
 */
export const makeReporting = (deps: {
  readonly client: WorkerClient
  readonly workerName: string
  readonly registration: Registration
  readonly reportWindowMs: Effect.Effect<number>
  readonly log: (line: string) => Effect.Effect<void>
  readonly taskLog: (line: string) => Effect.Effect<void>
}) =>
  Effect.gen(function* () {
    const { client, log, registration, reportWindowMs, taskLog, workerName } = deps
    const { asWorker, registered, sessionChanged } = registration
    const pendingCompletions = yield* Ref.make(0)
    const completions = yield* Queue.bounded<Completion>(MAX_BUFFERED_COMPLETIONS)

    /** Queues a completion for the next batch. */
    const complete = (completion: Completion) =>
      Effect.zipRight(
        Ref.update(pendingCompletions, (n) => n + 1),
        Queue.offer(completions, completion)
      )

    /** Reports completions; those refused while the session changed are sent again (at most twice more). */
    const completeAll = (items: ReadonlyArray<Completion>) =>
      Effect.gen(function* () {
        let pending = items
        for (let attempt = 0; pending.length > 0; attempt++) {
          const { n, id } = yield* registered
          const outcomes = yield* client.task.completeBatch({ workerId: id, items: pending })
          const refused = outcomes.filter((o) => !o.ok)
          const again = attempt < 2 && refused.length > 0 && (yield* sessionChanged(n))
          if (!again) {
            for (const o of refused) yield* log(`completion of ${o.taskId} refused: ${o.error ?? "unknown"}`)
            return
          }
          const retry = new Set(refused.map((o) => o.taskId))
          pending = pending.filter((i) => retry.has(i.taskId))
        }
      })

    // == completions: one `task.completeBatch` for whatever finished meanwhile
    const flush = Effect.gen(function* () {
      const batch = yield* Queue.takeBetween(completions, 1, 1000)
      const items = [...batch]
      const window = yield* reportWindowMs
      yield* retryTransport(completeAll(items), window).pipe(
        Effect.timeoutFail({ duration: Duration.millis(window), onTimeout: () => "the hub did not take this worker back in time" }),
        Effect.catchAll((e) => log(`could not report ${items.length} completion(s): ${describe(e)}`)),
        Effect.ensuring(Ref.update(pendingCompletions, (n) => n - items.length))
      )
    })

    const report = (task: RunningTask, exit: Exit.Exit<unknown, TaskFailure>) =>
      Effect.gen(function* () {
        const { task: t, fencingToken } = task.lease
        const took = formatMs((yield* Clock.currentTimeMillis) - task.startedAt)
        if (Exit.isSuccess(exit)) {
          yield* complete({ taskId: t.id, fencingToken, result: exit.value })
          return yield* taskLog(`done ${t.id} ${t.kind} ${took}`)
        }
        if (task.reason === "cancelled" || task.reason === "lease-lost") {
          return yield* taskLog(`${task.reason === "cancelled" ? "cancelled" : "lease lost"} ${t.id} ${t.kind} ${took}`)
        }
        const failure = Option.getOrUndefined(Cause.failureOption(exit.cause))
        const interrupted = failure === undefined && Cause.isInterruptedOnly(exit.cause)
        const message =
          failure?.message ??
          (interrupted ? `worker ${workerName} stopped before the task finished` : `worker error: ${describe(Cause.squash(exit.cause))}`)
        const retryable = failure?.retryable ?? true
        yield* taskLog(`failed ${t.id} ${t.kind} ${took}${retryable ? "" : " (permanent)"}: ${message.split("\n")[0]}`)
        const window = yield* reportWindowMs
        yield* retryTransport(
          asWorker((id) => client.task.fail({ workerId: id, taskId: t.id, fencingToken, message, retryable })),
          window
        ).pipe(
          Effect.timeoutFail({ duration: Duration.millis(window), onTimeout: () => "the hub did not take this worker back in time" }),
          Effect.catchAll((e) => log(`could not report the failure of ${t.id}: ${describe(e)}`))
        )
      })

    return { pendingCompletions, complete, flush, report } as const
  })
