import { Effect } from "effect"
import { hasScope, type Principal, type Role } from "../domain/Auth.js"
import { Forbidden } from "../domain/Errors.js"
import type { ProjectId, TaskId } from "../domain/Ids.js"
import type { MapRequest } from "../domain/rpc/TaskRpcs.js"
import { type EnqueueTask, type TaskKind, TaskRefused, type TaskStatus } from "../domain/Task.js"
import { ProjectAccess } from "../project/ProjectAccess.js"
import { ProjectsRepo } from "../project/ProjectsRepo.js"
import { MapReduce } from "./MapReduce.js"
import { TaskQueue } from "./TaskQueue.js"
import { WorkerHub } from "./WorkerHub.js"

const privileged: ReadonlyArray<TaskKind> = ["shell", "python"]
const isCustomCli = (kind: TaskKind, payload: unknown) =>
  kind === "cli" && typeof payload === "object" && payload !== null && (payload as { adapter?: unknown }).adapter === "custom"

/** The `worker` capability: a worker key, or a key with the worker or admin scope. */
export const requireWorker = (caller: Principal): Effect.Effect<void, Forbidden> =>
  caller.kind === "worker" || caller.scopes.includes("worker") || caller.scopes.includes("admin")
    ? Effect.void
    : Effect.fail(new Forbidden({ reason: "worker operations need a worker key (kiris key create NAME --scope worker)" }))

/**
 * The swarm queue as clients see it: every operation checked against the caller's project role
 * (viewer to read, member to change) and capabilities (`execute` for shell/python tasks), then handed
 * to TaskQueue. Workers' own operations are checked by `requireWorker`.
 */
export class TaskAccess extends Effect.Service<TaskAccess>()("kiris/TaskAccess", {
  effect: Effect.gen(function* () {
    const queue = yield* TaskQueue
    const access = yield* ProjectAccess
    const projects = yield* ProjectsRepo
    const mapReduce = yield* MapReduce
    const workers = yield* WorkerHub

    /** shell/python tasks, and cli tasks with a custom command template, run arbitrary commands. */
    const checkKind = (caller: Principal, kind: TaskKind, payload: unknown) => {
      const what = privileged.includes(kind) ? `${kind} tasks` : isCustomCli(kind, payload) ? "cli tasks with a custom command template" : undefined
      return what !== undefined && !hasScope(caller, "execute")
        ? Effect.fail(new TaskRefused({ reason: `${what} need the execute capability: use a key with the \`execute\` scope` }))
        : Effect.void
    }

    const authorizeAll = (caller: Principal, projectIds: Iterable<ProjectId>, min: Role) =>
      Effect.forEach(new Set(projectIds), (id) => access.authorize(caller, id, min), { discard: true })

    /** Loads the tasks, then checks the caller may act on every one of their projects. */
    const tasksFor = (caller: Principal, taskIds: ReadonlyArray<TaskId>, min: Role) =>
      Effect.flatMap(queue.getMany(taskIds), (tasks) =>
        Effect.as(
          authorizeAll(
            caller,
            tasks.map((t) => t.projectId),
            min
          ),
          tasks
        )
      )

    /** `undefined` = every project (server admins). */
    const visibleProjects = (caller: Principal, projectId: ProjectId | undefined) =>
      projectId !== undefined
        ? Effect.as(access.authorize(caller, projectId, "viewer"), [projectId] as ReadonlyArray<ProjectId> | undefined)
        : caller.isAdmin
          ? Effect.succeed(undefined)
          : Effect.map(projects.listFor(caller.userId), (ps) => ps.map((p) => p.id) as ReadonlyArray<ProjectId> | undefined)

    const enqueueBatch = Effect.fn("TaskAccess.enqueueBatch")(function* (caller: Principal, inputs: ReadonlyArray<EnqueueTask>) {
      for (const input of inputs) yield* checkKind(caller, input.kind, input.payload)
      yield* authorizeAll(
        caller,
        inputs.map((i) => i.projectId),
        "member"
      )
      return yield* queue.enqueueBatch(inputs)
    })

    const enqueue = Effect.fn("TaskAccess.enqueue")(function* (caller: Principal, input: EnqueueTask) {
      const [task] = yield* enqueueBatch(caller, [input])
      return task!
    })

    const get = Effect.fn("TaskAccess.get")(function* (caller: Principal, taskId: TaskId) {
      const [task] = yield* tasksFor(caller, [taskId], "viewer")
      return task!
    })

    const list = Effect.fn("TaskAccess.list")(function* (
      caller: Principal,
      filter: { readonly projectId?: ProjectId | undefined; readonly status?: TaskStatus | undefined; readonly kind?: TaskKind | undefined; readonly limit?: number | undefined }
    ) {
      const projectIds = yield* visibleProjects(caller, filter.projectId)
      if (projectIds !== undefined && projectIds.length === 0) return []
      return yield* queue.list({ projectIds, status: filter.status, kind: filter.kind, limit: filter.limit })
    })

    const stats = Effect.fn("TaskAccess.stats")(function* (caller: Principal, projectId: ProjectId | undefined) {
      return yield* queue.stats(yield* visibleProjects(caller, projectId))
    })

    const change =
      <A, E>(name: string, f: (taskId: TaskId) => Effect.Effect<A, E>) =>
      (caller: Principal, taskId: TaskId) =>
        Effect.flatMap(tasksFor(caller, [taskId], "member"), () => f(taskId)).pipe(Effect.withSpan(`TaskAccess.${name}`))

    const wait = Effect.fn("TaskAccess.wait")(function* (caller: Principal, taskIds: ReadonlyArray<TaskId>, timeoutMs: number | undefined) {
      yield* tasksFor(caller, taskIds, "viewer")
      return yield* queue.wait(taskIds, timeoutMs)
    })

    const map = Effect.fn("TaskAccess.map")(function* (caller: Principal, request: MapRequest) {
      for (const item of request.items) yield* checkKind(caller, request.kind, item)
      if (request.reduce !== undefined || request.reduceKind !== undefined) yield* checkKind(caller, request.reduceKind ?? request.kind, request.reduce)
      yield* access.authorize(caller, request.projectId, "member")
      return yield* mapReduce.map(request)
    })

    const listWorkers = Effect.fn("TaskAccess.workers")(function* () {
      return yield* workers.list(yield* queue.inFlight)
    })

    return {
      enqueue,
      enqueueBatch,
      get,
      list,
      stats,
      cancel: change("cancel", queue.cancel),
      retry: change("retry", queue.retry),
      approve: (caller: Principal, taskId: TaskId, result: unknown) => change("approve", (id) => queue.approve(id, result))(caller, taskId),
      wait,
      map,
      workers: listWorkers
    } as const
  }),
  dependencies: [ProjectAccess.Default, ProjectsRepo.Default, MapReduce.Default]
}) {}
