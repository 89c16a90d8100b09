import { Effect } from "effect"
import { CurrentPrincipal } from "../../domain/rpc/Middleware.js"
import { TaskRpcs } from "../../domain/rpc/TaskRpcs.js"
import { TaskAccess } from "../../queue/TaskAccess.js"

/** Thin RPC handlers of the client side of the swarm queue. */
export const TaskHandlers = TaskRpcs.toLayer(
  Effect.gen(function* () {
    const tasks = yield* TaskAccess
    const as = <A, E, R>(f: (caller: CurrentPrincipal["Type"]) => Effect.Effect<A, E, R>) => Effect.flatMap(CurrentPrincipal, f)
    return TaskRpcs.of({
      "task.enqueue": (input) => as((c) => tasks.enqueue(c, input)),
      "task.enqueueBatch": ({ tasks: inputs }) => as((c) => tasks.enqueueBatch(c, inputs)),
      "task.get": ({ taskId }) => as((c) => tasks.get(c, taskId)),
      "task.list": (filter) => as((c) => tasks.list(c, filter)),
      "task.cancel": ({ taskId }) => as((c) => tasks.cancel(c, taskId)),
      "task.retry": ({ taskId }) => as((c) => tasks.retry(c, taskId)),
      "task.approve": ({ result, taskId }) => as((c) => tasks.approve(c, taskId, result)),
      "task.wait": ({ taskIds, timeoutMs }) => as((c) => tasks.wait(c, taskIds, timeoutMs)),
      "task.stats": ({ projectId }) => as((c) => tasks.stats(c, projectId)),
      "task.map": (request) => as((c) => tasks.map(c, request)),
      "task.workers": () => tasks.workers()
    })
  })
)
