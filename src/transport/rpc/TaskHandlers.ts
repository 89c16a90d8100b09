import { Effect } from "effect"
import { CurrentPrincipal } from "../../domain/rpc/Middleware.js"
import { TaskRpcs } from "../../domain/rpc/TaskRpcs.js"
import { TaskAccess } from "../../queue/TaskAccess.js"
import { handlersLayer } from "./HandlersLayer.js"

/** Thin RPC handlers of the client side of the swarm queue (the auth middleware has checked the caller). */
export const TaskHandlers = handlersLayer(
  TaskRpcs,
  Effect.gen(function* () {
    const tasks = yield* TaskAccess
    return TaskRpcs.of({
      "task.enqueue": (input) => tasks.enqueue(input),
      "task.enqueueBatch": ({ tasks: inputs }) => tasks.enqueueBatch(inputs),
      "task.get": ({ taskId }) => tasks.get(taskId),
      "task.list": (filter) => Effect.flatMap(CurrentPrincipal, (c) => tasks.list(c, filter)),
      "task.cancel": ({ taskId }) => tasks.cancel(taskId),
      "task.retry": ({ taskId }) => tasks.retry(taskId),
      "task.approve": ({ result, taskId }) => tasks.approve(taskId, result),
      "task.wait": ({ taskIds, timeoutMs }) => tasks.wait(taskIds, timeoutMs),
      "task.stats": ({ projectId }) => Effect.flatMap(CurrentPrincipal, (c) => tasks.stats(c, projectId)),
      "task.map": (request) => tasks.map(request),
      "task.workers": () => tasks.workers,
      "task.drainWorker": ({ workerId }) => tasks.drainWorker(workerId)
    })
  })
)
