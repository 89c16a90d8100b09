import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Schema } from "effect"
import { Requires } from "../Access.js"
import { ProjectId, TaskId } from "../Ids.js"
import { MapRequest, MapResult, TaskRequirements } from "../rpc/TaskRpcs.js"
import { EnqueueTask, Task, TaskKind, TaskStats, TaskStatus, WorkerInfo } from "../Task.js"
import { Authentication } from "./Authentication.js"
import { Forbidden, InvalidInput, NotFound } from "./HttpErrors.js"

export class EnqueueBatch extends Schema.Class<EnqueueBatch>("EnqueueBatch")({
  tasks: Schema.Array(EnqueueTask)
}) {}

export class WaitRequest extends Schema.Class<WaitRequest>("WaitRequest")({
  taskIds: Schema.Array(TaskId),
  /** Answer after this long with the tasks' current state (default: once every one has ended). */
  timeoutMs: Schema.optional(Schema.Number)
}) {}

export class ApproveRequest extends Schema.Class<ApproveRequest>("ApproveRequest")({
  /** The human task's result. */
  result: Schema.optional(Schema.Unknown)
}) {}

const TaskPath = Schema.Struct({ taskId: TaskId })

const ListQuery = Schema.Struct({
  projectId: Schema.optional(ProjectId),
  status: Schema.optional(TaskStatus),
  kind: Schema.optional(TaskKind),
  /** 1 to 200 (larger values are capped), default 100. */
  limit: Schema.optional(Schema.NumberFromString)
})

/**
 * The swarm queue, as the `task.*` RPCs: every call checked against the caller's project role
 * (viewer to read, member to change); shell and python tasks also need the `execute` scope.
 * A task or project the caller cannot see is reported as not found.
 */
export class TasksApi extends HttpApiGroup.make("tasks")
  .add(
    HttpApiEndpoint.post("enqueue", "/api/tasks")
      .setPayload(EnqueueTask)
      .addSuccess(Task, { status: 201 })
      .addError(NotFound)
      .addError(Forbidden)
      .addError(InvalidInput)
      .annotate(Requires, TaskRequirements.enqueue)
  )
  .add(
    HttpApiEndpoint.post("enqueueBatch", "/api/tasks/batch")
      .setPayload(EnqueueBatch)
      .addSuccess(Schema.Array(Task), { status: 201 })
      .addError(NotFound)
      .addError(Forbidden)
      .addError(InvalidInput)
      .annotate(Requires, TaskRequirements.enqueueBatch)
  )
  .add(
    HttpApiEndpoint.get("list", "/api/tasks")
      .setUrlParams(ListQuery)
      .addSuccess(Schema.Array(Task))
      .addError(NotFound)
      .addError(Forbidden)
      .annotate(Requires, TaskRequirements.list)
  )
  .add(
    HttpApiEndpoint.get("stats", "/api/tasks/stats")
      .setUrlParams(Schema.Struct({ projectId: Schema.optional(ProjectId) }))
      .addSuccess(TaskStats)
      .addError(NotFound)
      .addError(Forbidden)
      .annotate(Requires, TaskRequirements.stats)
  )
  .add(
    HttpApiEndpoint.post("wait", "/api/tasks/wait")
      .setPayload(WaitRequest)
      .addSuccess(Schema.Array(Task))
      .addError(NotFound)
      .addError(Forbidden)
      .annotate(Requires, TaskRequirements.wait)
  )
  .add(
    HttpApiEndpoint.post("map", "/api/tasks/map")
      .setPayload(MapRequest)
      .addSuccess(MapResult, { status: 201 })
      .addError(NotFound)
      .addError(Forbidden)
      .addError(InvalidInput)
      .annotate(Requires, TaskRequirements.map)
  )
  .add(
    HttpApiEndpoint.get("get", "/api/tasks/:taskId")
      .setPath(TaskPath)
      .addSuccess(Task)
      .addError(NotFound)
      .addError(Forbidden)
      .annotate(Requires, TaskRequirements.get)
  )
  .add(
    HttpApiEndpoint.post("cancel", "/api/tasks/:taskId/cancel")
      .setPath(TaskPath)
      .addSuccess(Task)
      .addError(NotFound)
      .addError(Forbidden)
      .annotate(Requires, TaskRequirements.cancel)
  )
  .add(
    HttpApiEndpoint.post("retry", "/api/tasks/:taskId/retry")
      .setPath(TaskPath)
      .addSuccess(Task)
      .addError(NotFound)
      .addError(Forbidden)
      .addError(InvalidInput)
      .annotate(Requires, TaskRequirements.retry)
  )
  .add(
    HttpApiEndpoint.post("approve", "/api/tasks/:taskId/approve")
      .setPath(TaskPath)
      .setPayload(ApproveRequest)
      .addSuccess(Task)
      .addError(NotFound)
      .addError(Forbidden)
      .addError(InvalidInput)
      .annotate(Requires, TaskRequirements.approve)
  )
  .add(
    HttpApiEndpoint.get("workers", "/api/workers")
      .addSuccess(Schema.Array(WorkerInfo))
      .addError(Forbidden)
      .annotate(Requires, TaskRequirements.workers)
  )
  // Every operation here can be refused by the authorization path (see domain/Access.ts).
  .addError(Forbidden)
  .addError(NotFound)
  .middleware(Authentication) {}
