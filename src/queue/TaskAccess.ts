import { Effect } from "effect"
import { AccessControl } from "../auth/AccessControl.js"
import type { Principal } from "../domain/Auth.js"
import type { ProjectId, TaskId, WorkerId } from "../domain/Ids.js"
import type { MapRequest } from "../domain/rpc/TaskRpcs.js"
import type { EnqueueTask, TaskKind, TaskStatus } from "../domain/Task.js"
import { ProjectsRepo } from "../project/ProjectsRepo.js"
import { MapReduce } from "./MapReduce.js"
import { TaskQueue } from "./TaskQueue.js"
import { WorkerHub } from "./WorkerHub.js"

/**
 * The swarm queue as clients see it. Callers arrive authorized for the operation's declared
 * requirement (the RPC and REST middleware, or `AccessControl.checkRpc` for in-process callers such as
 * the `enqueue` tool); what is left here is limiting lists and counts to the projects a caller can see.
 */
export class TaskAccess extends Effect.Service<TaskAccess>()("kiris/TaskAccess", {
  effect: Effect.gen(function* () {
    const queue = yield* TaskQueue
    const projects = yield* ProjectsRepo
    const mapReduce = yield* MapReduce
    const workers = yield* WorkerHub
    const control = yield* AccessControl

    /** `undefined` = every project (server admins with unrestricted credentials). */
    const visibleProjects = (caller: Principal, projectId: ProjectId | undefined) =>
      projectId !== undefined
        ? Effect.succeed([projectId] as ReadonlyArray<ProjectId> | undefined)
        : caller.isAdmin && caller.projects === undefined
          ? Effect.succeed(undefined)
          : Effect.map(
              projects.listFor(caller.userId),
              (ps) =>
                ps.map((p) => p.id).filter((id) => caller.projects === undefined || caller.projects.includes(id)) as
                  ReadonlyArray<ProjectId> | undefined
            )

    const list = Effect.fn("TaskAccess.list")(function* (
      caller: Principal,
      filter: {
        readonly projectId?: ProjectId | undefined
        readonly status?: TaskStatus | undefined
        readonly kind?: TaskKind | undefined
        readonly limit?: number | undefined
      }
    ) {
      const projectIds = yield* visibleProjects(caller, filter.projectId)
      if (projectIds !== undefined && projectIds.length === 0) return []
      return yield* queue.list({ projectIds, status: filter.status, kind: filter.kind, limit: filter.limit })
    })

    const stats = Effect.fn("TaskAccess.stats")(function* (caller: Principal, projectId: ProjectId | undefined) {
      return yield* queue.stats(yield* visibleProjects(caller, projectId))
    })

    return {
      enqueue: (input: EnqueueTask) => Effect.map(queue.enqueueBatch([input]), (tasks) => tasks[0]!),
      enqueueBatch: (inputs: ReadonlyArray<EnqueueTask>) => queue.enqueueBatch(inputs),
      get: (taskId: TaskId) => queue.get(taskId),
      list,
      stats,
      cancel: (taskId: TaskId) => queue.cancel(taskId),
      retry: (taskId: TaskId) => queue.retry(taskId),
      approve: (taskId: TaskId, result: unknown) => queue.approve(taskId, result),
      reject: (taskId: TaskId, reason: string) => queue.reject(taskId, reason),
      wait: (taskIds: ReadonlyArray<TaskId>, timeoutMs: number | undefined) => queue.wait(taskIds, timeoutMs),
      map: (request: MapRequest) => mapReduce.map(request),
      /** For in-process callers (the `enqueue` tool): checked like `task.enqueueBatch` and `task.wait`. */
      enqueueAs: (caller: Principal, inputs: ReadonlyArray<EnqueueTask>) =>
        Effect.zipRight(control.checkRpc(caller, "task.enqueueBatch", { tasks: inputs }), queue.enqueueBatch(inputs)),
      waitAs: (caller: Principal, taskIds: ReadonlyArray<TaskId>, timeoutMs: number) =>
        Effect.zipRight(control.checkRpc(caller, "task.wait", { taskIds }), queue.wait(taskIds, timeoutMs)),
      workers: Effect.flatMap(queue.inFlight, workers.list),
      drainWorker: (workerId: WorkerId) => workers.drain(workerId)
    } as const
  }),
  dependencies: [ProjectsRepo.Default, MapReduce.Default, AccessControl.Default]
}) {}
