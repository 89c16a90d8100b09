import { Effect, Layer, Stream } from "effect"
import { Forbidden } from "../../domain/Errors.js"
import type { TaskId, WorkerId } from "../../domain/Ids.js"
import { CurrentPrincipal } from "../../domain/rpc/Middleware.js"
import { WorkerRpcs } from "../../domain/rpc/WorkerRpcs.js"
import { type LeaseLost, leaseNotHeld } from "../../domain/Task.js"
import { WorkerAccess, workerOwner } from "../../queue/WorkerAccess.js"
import { TaskQueue } from "../../queue/TaskQueue.js"
import { type Connection, WorkerHub } from "../../queue/WorkerHub.js"
import { handlersLayer } from "./HandlersLayer.js"

/**
 * Thin RPC handlers of the worker side of the swarm. A worker id is registered on the calling
 * connection by `worker.connect`; leasing and every call on a leased task act as a worker of that
 * connection, and leases come only from the projects the worker key serves (WorkerAccess).
 */
export const WorkerHandlers = handlersLayer(
  WorkerRpcs,
  Effect.gen(function* () {
    const queue = yield* TaskQueue
    const hub = yield* WorkerHub
    const access = yield* WorkerAccess

    const connection = (clientId: number) => Effect.map(CurrentPrincipal, (caller): Connection => ({ clientId, owner: workerOwner(caller) }))

    /**
     * The worker of this connection a call on a leased task acts as: the one named, or the only one
     * registered here; undefined when there is none (such a connection holds no lease).
     */
    const holder = (clientId: number, named: WorkerId | undefined) =>
      Effect.gen(function* () {
        const ids = yield* hub.registered(yield* connection(clientId))
        if (named !== undefined) return ids.find((w) => w === named)
        if (ids.length > 1) return yield* new Forbidden({ reason: "several workers are registered on this connection: name one with workerId" })
        return ids[0]
      })

    const held = <A, E>(clientId: number, named: WorkerId | undefined, taskId: TaskId, f: (workerId: WorkerId) => Effect.Effect<A, E>) =>
      Effect.flatMap(holder(clientId, named), (w): Effect.Effect<A, E | LeaseLost> => (w === undefined ? Effect.fail(leaseNotHeld(taskId)) : f(w)))

    return WorkerRpcs.of({
      "worker.connect": (input, { clientId }) =>
        Stream.unwrap(
          Effect.gen(function* () {
            yield* access.servedProjects(yield* CurrentPrincipal)
            return hub.connect(input, yield* connection(clientId))
          })
        ),
      "task.lease": ({ kinds, leaseSeconds, max, workerId }, { clientId }) =>
        Effect.gen(function* () {
          const caller = yield* CurrentPrincipal
          const projects = yield* access.servedProjects(caller)
          const ids = yield* hub.registered({ clientId, owner: workerOwner(caller) })
          if (!ids.includes(workerId)) {
            return yield* new Forbidden({ reason: `worker ${workerId} is not registered on this connection: call worker.connect first` })
          }
          return yield* queue.lease(workerId, kinds, max, leaseSeconds, projects)
        }),
      "task.heartbeat": ({ fencingToken, progress, taskId, workerId }, { clientId }) =>
        held(clientId, workerId, taskId, (w) => queue.heartbeat(w, taskId, fencingToken, progress)),
      "task.complete": ({ fencingToken, result, taskId, workerId }, { clientId }) =>
        held(clientId, workerId, taskId, (w) => Effect.asVoid(queue.complete(w, taskId, fencingToken, result))),
      "task.fail": ({ fencingToken, message, retryable, taskId, workerId }, { clientId }) =>
        held(clientId, workerId, taskId, (w) => Effect.asVoid(queue.fail(w, taskId, fencingToken, message, retryable))),
      "task.completeBatch": ({ items, workerId }, { clientId }) =>
        Effect.gen(function* () {
          const w = yield* holder(clientId, workerId)
          if (w === undefined) return items.map((i) => ({ taskId: i.taskId, ok: false, error: errorText(leaseNotHeld(i.taskId)) }))
          const outcomes = yield* queue.completeBatch(w, items)
          return outcomes.map((o) => (o.ok ? { taskId: o.taskId, ok: true } : { taskId: o.taskId, ok: false, error: errorText(o.error) }))
        }),
      "task.progress": ({ fencingToken, parts, taskId, workerId }, { clientId }) =>
        held(clientId, workerId, taskId, (w) => queue.progress(w, taskId, fencingToken, parts))
    })
  })
).pipe(Layer.provide(WorkerAccess.Default))

const errorText = (e: LeaseLost) => `LeaseLost: ${e.reason}`
