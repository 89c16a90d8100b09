import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { Api } from "../../domain/http/Api.js"
import { TaskAccess } from "../../queue/TaskAccess.js"
import { makeHttpAccess } from "./HttpAccess.js"

/** Thin REST handlers of the swarm queue: the same TaskAccess calls as the `task.*` RPC handlers. */
export const TaskApiHandlers = HttpApiBuilder.group(Api, "tasks", (handlers) =>
  Effect.gen(function* () {
    const tasks = yield* TaskAccess
    const access = yield* makeHttpAccess
    return handlers
      .handle("enqueue", ({ payload }) => access("tasks", "enqueue")(payload, () => tasks.enqueue(payload)))
      .handle("enqueueBatch", ({ payload }) => access("tasks", "enqueueBatch")(payload, () => tasks.enqueueBatch(payload.tasks)))
      .handle("list", ({ urlParams }) => access("tasks", "list")(urlParams, (c) => tasks.list(c, urlParams)))
      .handle("stats", ({ urlParams }) => access("tasks", "stats")(urlParams, (c) => tasks.stats(c, urlParams.projectId)))
      .handle("wait", ({ payload }) => access("tasks", "wait")(payload, () => tasks.wait(payload.taskIds, payload.timeoutMs)))
      .handle("map", ({ payload }) => access("tasks", "map")(payload, () => tasks.map(payload)))
      .handle("get", ({ path }) => access("tasks", "get")(path, () => tasks.get(path.taskId)))
      .handle("cancel", ({ path }) => access("tasks", "cancel")(path, () => tasks.cancel(path.taskId)))
      .handle("retry", ({ path }) => access("tasks", "retry")(path, () => tasks.retry(path.taskId)))
      .handle("approve", ({ path, payload }) => access("tasks", "approve")(path, () => tasks.approve(path.taskId, payload.result)))
      .handle("workers", () => access("tasks", "workers")({}, () => tasks.workers))
  })
)
