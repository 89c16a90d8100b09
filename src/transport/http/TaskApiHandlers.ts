import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import type { Principal } from "../../domain/Auth.js"
import { Api } from "../../domain/http/Api.js"
import { CurrentPrincipal } from "../../domain/rpc/Middleware.js"
import { TaskAccess } from "../../queue/TaskAccess.js"

/** Runs `f` with the authenticated caller. */
const as = <A, E, R>(f: (caller: Principal) => Effect.Effect<A, E, R>) => Effect.flatMap(CurrentPrincipal, f)

/** Thin REST handlers of the swarm queue: the same TaskAccess calls as the `task.*` RPC handlers. */
export const TaskApiHandlers = HttpApiBuilder.group(Api, "tasks", (handlers) =>
  Effect.map(TaskAccess, (tasks) =>
    handlers
      .handle("enqueue", ({ payload }) => as((c) => tasks.enqueue(c, payload)))
      .handle("enqueueBatch", ({ payload }) => as((c) => tasks.enqueueBatch(c, payload.tasks)))
      .handle("list", ({ urlParams }) => as((c) => tasks.list(c, urlParams)))
      .handle("stats", ({ urlParams }) => as((c) => tasks.stats(c, urlParams.projectId)))
      .handle("wait", ({ payload }) => as((c) => tasks.wait(c, payload.taskIds, payload.timeoutMs)))
      .handle("map", ({ payload }) => as((c) => tasks.map(c, payload)))
      .handle("get", ({ path }) => as((c) => tasks.get(c, path.taskId)))
      .handle("cancel", ({ path }) => as((c) => tasks.cancel(c, path.taskId)))
      .handle("retry", ({ path }) => as((c) => tasks.retry(c, path.taskId)))
      .handle("approve", ({ path, payload }) => as((c) => tasks.approve(c, path.taskId, payload.result)))
      .handle("workers", () => tasks.workers())
  )
)
