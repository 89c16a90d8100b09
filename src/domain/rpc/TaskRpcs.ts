import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { Access, Requires, runsCommands } from "../Access.js"
import { Forbidden, InvalidInput, NotFound } from "../Errors.js"
import { ProjectId, TaskId, WorkerId } from "../Ids.js"
import { EnqueueTask, Task, TaskKind, TaskStats, TaskStatus, WorkerInfo } from "../Task.js"
import { AuthMiddleware } from "./Middleware.js"
import { Waits } from "./Waits.js"

const TaskErrors = Schema.Union(NotFound, Forbidden, InvalidInput)

export const MapPolicy = Schema.Union(Schema.Literal("fail-fast", "partial"), Schema.TemplateLiteral(Schema.Literal("quorum:"), Schema.Number))
export type MapPolicy = typeof MapPolicy.Type

export class MapRequest extends Schema.Class<MapRequest>("MapRequest")({
  projectId: ProjectId,
  kind: TaskKind,
  /** One payload per map task. */
  items: Schema.Array(Schema.Unknown),
  /** Payload of the reduce task; it receives the map results as its inputs. */
  reduce: Schema.optional(Schema.Unknown),
  reduceKind: Schema.optional(TaskKind),
  policy: Schema.optionalWith(MapPolicy, { default: () => "fail-fast" as const }),
  priority: Schema.optional(Schema.Number),
  maxAttempts: Schema.optional(Schema.Number)
}) {}

/** A fan-out runs commands when any map item, or its reduce, does. */
export const mapRunsCommands = (request: MapRequest): boolean =>
  request.items.some((item) => runsCommands(request.kind, item)) ||
  ((request.reduce !== undefined || request.reduceKind !== undefined) && runsCommands(request.reduceKind ?? request.kind, request.reduce))

export class MapResult extends Schema.Class<MapResult>("MapResult")({
  mapTasks: Schema.Array(Task),
  reduceTask: Schema.NullOr(Task)
}) {}

const viewTasks = Access.tasks("viewer", "read", (p: { readonly taskId: TaskId }) => [p.taskId])
const changeTasks = Access.tasks("member", "write", (p: { readonly taskId: TaskId }) => [p.taskId])
const visibleProjects = Access.project("viewer", "read", { optional: true })

/** What each queue operation needs; the `task.*` RPCs and the `/api/tasks` endpoints declare the same. */
export const TaskRequirements = {
  enqueue: Access.project("member", "write", { execute: (p: EnqueueTask) => runsCommands(p.kind, p.payload) }),
  enqueueBatch: Access.project("member", "write", {
    projects: (p: { readonly tasks: ReadonlyArray<EnqueueTask> }) => p.tasks.map((t) => t.projectId),
    execute: (p: { readonly tasks: ReadonlyArray<EnqueueTask> }) => p.tasks.some((t) => runsCommands(t.kind, t.payload))
  }),
  get: viewTasks,
  list: visibleProjects,
  cancel: changeTasks,
  retry: changeTasks,
  approve: changeTasks,
  wait: Access.tasks("viewer", "read", (p: { readonly taskIds: ReadonlyArray<TaskId> }) => p.taskIds),
  stats: visibleProjects,
  map: Access.project("member", "write", { execute: (p: MapRequest) => mapRunsCommands(p) }),
  workers: Access.authenticated("read"),
  /** Stopping a worker affects every project it serves: server admins only. */
  drainWorker: Access.serverAdmin("write")
} as const

/**
 * Client operations on the swarm queue: viewers read, members change; tasks that run commands
 * (shell, python, custom cli templates) also need the `execute` grant.
 */
export class TaskRpcs extends RpcGroup.make(
  Rpc.make("enqueue", { payload: EnqueueTask, success: Task, error: TaskErrors }).annotate(Requires, TaskRequirements.enqueue),
  Rpc.make("enqueueBatch", { payload: { tasks: Schema.Array(EnqueueTask) }, success: Schema.Array(Task), error: TaskErrors }).annotate(
    Requires,
    TaskRequirements.enqueueBatch
  ),
  Rpc.make("get", { payload: { taskId: TaskId }, success: Task, error: TaskErrors }).annotate(Requires, TaskRequirements.get),
  Rpc.make("list", {
    payload: {
      projectId: Schema.optional(ProjectId),
      status: Schema.optional(TaskStatus),
      kind: Schema.optional(TaskKind),
      limit: Schema.optional(Schema.Number)
    },
    success: Schema.Array(Task),
    error: TaskErrors
  }).annotate(Requires, TaskRequirements.list),
  Rpc.make("cancel", { payload: { taskId: TaskId }, success: Task, error: TaskErrors }).annotate(Requires, TaskRequirements.cancel),
  Rpc.make("retry", { payload: { taskId: TaskId }, success: Task, error: TaskErrors }).annotate(Requires, TaskRequirements.retry),
  /** Ends a waiting `human` task as done, with the approver's result. */
  Rpc.make("approve", { payload: { taskId: TaskId, result: Schema.optional(Schema.Unknown) }, success: Task, error: TaskErrors }).annotate(
    Requires,
    TaskRequirements.approve
  ),
  /** Resolves once every given task has ended (or after `timeoutMs`, with their current state). */
  Rpc.make("wait", {
    payload: { taskIds: Schema.Array(TaskId), timeoutMs: Schema.optional(Schema.Number) },
    success: Schema.Array(Task),
    error: TaskErrors
  })
    .annotate(Requires, TaskRequirements.wait)
    .annotate(Waits, true),
  Rpc.make("stats", { payload: { projectId: Schema.optional(ProjectId) }, success: TaskStats, error: TaskErrors }).annotate(
    Requires,
    TaskRequirements.stats
  ),
  Rpc.make("map", { payload: MapRequest, success: MapResult, error: TaskErrors }).annotate(Requires, TaskRequirements.map),
  Rpc.make("workers", { success: Schema.Array(WorkerInfo), error: TaskErrors }).annotate(Requires, TaskRequirements.workers),
  /**
   * Tells a connected worker to drain: it finishes its running tasks, leases no new ones, then
   * exits. `NotFound` when no connected worker has that id.
   */
  Rpc.make("drainWorker", { payload: { workerId: WorkerId }, success: Schema.Void, error: TaskErrors }).annotate(
    Requires,
    TaskRequirements.drainWorker
  )
)
  .prefix("task.")
  .middleware(AuthMiddleware) {}
