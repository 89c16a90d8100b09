import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { Forbidden, InvalidInput, NotFound } from "../Errors.js"
import { ProjectId, TaskId } from "../Ids.js"
import { EnqueueTask, Task, TaskKind, TaskRefused, TaskStats, TaskStatus, WorkerInfo } from "../Task.js"
import { AuthMiddleware } from "./Middleware.js"

const TaskErrors = Schema.Union(NotFound, Forbidden, InvalidInput, TaskRefused)

export const MapPolicy = Schema.Union(
  Schema.Literal("fail-fast", "partial"),
  Schema.TemplateLiteral(Schema.Literal("quorum:"), Schema.Number)
)
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

export class MapResult extends Schema.Class<MapResult>("MapResult")({
  mapTasks: Schema.Array(Task),
  reduceTask: Schema.NullOr(Task)
}) {}

/** Client operations on the swarm queue. Every call is checked against the caller's project role. */
export class TaskRpcs extends RpcGroup.make(
  Rpc.make("enqueue", { payload: EnqueueTask, success: Task, error: TaskErrors }),
  Rpc.make("enqueueBatch", { payload: { tasks: Schema.Array(EnqueueTask) }, success: Schema.Array(Task), error: TaskErrors }),
  Rpc.make("get", { payload: { taskId: TaskId }, success: Task, error: TaskErrors }),
  Rpc.make("list", {
    payload: {
      projectId: Schema.optional(ProjectId),
      status: Schema.optional(TaskStatus),
      kind: Schema.optional(TaskKind),
      limit: Schema.optional(Schema.Number)
    },
    success: Schema.Array(Task),
    error: TaskErrors
  }),
  Rpc.make("cancel", { payload: { taskId: TaskId }, success: Task, error: TaskErrors }),
  Rpc.make("retry", { payload: { taskId: TaskId }, success: Task, error: TaskErrors }),
  /** Ends a waiting `human` task as done, with the approver's result. */
  Rpc.make("approve", { payload: { taskId: TaskId, result: Schema.optional(Schema.Unknown) }, success: Task, error: TaskErrors }),
  /** Resolves once every given task has ended (or after `timeoutMs`, with their current state). */
  Rpc.make("wait", {
    payload: { taskIds: Schema.Array(TaskId), timeoutMs: Schema.optional(Schema.Number) },
    success: Schema.Array(Task),
    error: TaskErrors
  }),
  Rpc.make("stats", { payload: { projectId: Schema.optional(ProjectId) }, success: TaskStats, error: TaskErrors }),
  Rpc.make("map", { payload: MapRequest, success: MapResult, error: TaskErrors }),
  Rpc.make("workers", { success: Schema.Array(WorkerInfo), error: TaskErrors })
).prefix("task.").middleware(AuthMiddleware) {}
