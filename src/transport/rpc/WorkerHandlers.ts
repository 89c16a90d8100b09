import { Effect, Stream } from "effect"
import type { NotFound } from "../../domain/Errors.js"
import { CurrentPrincipal } from "../../domain/rpc/Middleware.js"
import { WorkerRpcs } from "../../domain/rpc/WorkerRpcs.js"
import type { LeaseLost } from "../../domain/Task.js"
import { requireWorker } from "../../queue/TaskAccess.js"
import { TaskQueue } from "../../queue/TaskQueue.js"
import { WorkerHub } from "../../queue/WorkerHub.js"

/** Thin RPC handlers of the worker side of the swarm: every call needs the worker capability. */
export const WorkerHandlers = WorkerRpcs.toLayer(
  Effect.gen(function* () {
    const queue = yield* TaskQueue
    const hub = yield* WorkerHub
    const worker = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.zipRight(Effect.flatMap(CurrentPrincipal, requireWorker), effect)
    return WorkerRpcs.of({
      "worker.connect": (input) => Stream.unwrap(worker(Effect.succeed(hub.connect(input)))),
      "task.lease": ({ kinds, leaseSeconds, max, workerId }) =>
worker(queue.lease(workerId, kinds, max, leaseSeconds)),
      "task.heartbeat": ({ fencingToken, progress, taskId }) => worker(queue.heartbeat(taskId, fencingToken, progress)),
      "task.complete": ({ fencingToken, result, taskId }) => worker(Effect.asVoid(queue.complete(taskId, fencingToken, result))),
      "task.fail": ({ fencingToken, message, retryable, taskId }) => worker(Effect.asVoid(queue.fail(taskId, fencingToken, message, retryable))),
      "task.completeBatch": ({ items }) =>
        worker(
          Effect.map(queue.completeBatch(items), (outcomes) =>
            outcomes.map((o) => (o.ok ? { taskId: o.taskId, ok: true } : { taskId: o.taskId, ok: false, error: errorText(o.error) }))
          )
        ),
      "task.progress": ({ fencingToken, parts, taskId }) => worker(queue.progress(taskId, fencingToken, parts))
    })
  })
)

const errorText = (e: LeaseLost | NotFound) => (e._tag === "LeaseLost" ? `LeaseLost: ${e.reason}` : `NotFound: ${e.message}`)
