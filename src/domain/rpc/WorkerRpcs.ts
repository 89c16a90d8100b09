import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { Access, Requires } from "../Access.js"
import { Forbidden, InvalidInput, NotFound } from "../Errors.js"
import { TaskId, WorkerId } from "../Ids.js"
import { Lease, LeaseLost, TaskKind } from "../Task.js"
import { AuthMiddleware } from "./Middleware.js"

/** What the hub pushes down a worker's `worker.connect` stream. */
export const WorkerPush = Schema.Union(
  Schema.TaggedStruct("Registered", { workerId: WorkerId, leaseSeconds: Schema.Number }),
  Schema.TaggedStruct("WorkAvailable", { kinds: Schema.Array(TaskKind) }),
  Schema.TaggedStruct("CancelTask", { taskId: TaskId }),
  /** Finish the running tasks, lease no new ones, then disconnect and exit (`task.drainWorker`). */
  Schema.TaggedStruct("Drain", {})
)
export type WorkerPush = typeof WorkerPush.Type

const Fenced = { taskId: TaskId, fencingToken: Schema.Number }
/**
 * Which of the workers registered on this connection makes the call; optional when the connection
 * registered one (the usual case). Calls are accepted only from the connection holding the lease.
 */
const Caller = { workerId: Schema.optional(WorkerId) }
const WorkerErrors = Schema.Union(Forbidden, NotFound, LeaseLost, InvalidInput)

/**
 * The worker side of the swarm. Callers need a worker key; a worker serves only the projects its key
 * may run work in. `worker.connect` registers a worker id on the calling connection; leasing and the
 * calls on a leased task (with its fencing token) are accepted only from that connection.
 */
export class WorkerRpcs extends RpcGroup.make(
  Rpc.make("worker.connect", {
    payload: {
      /** Reuse an id to reclaim a registration after a reconnect. */
      workerId: Schema.optional(WorkerId),
      name: Schema.String,
      kinds: Schema.Array(TaskKind),
      capacity: Schema.Number
    },
    success: WorkerPush,
    error: Forbidden,
    stream: true
  }),
  Rpc.make("task.lease", {
    payload: { workerId: WorkerId, kinds: Schema.Array(TaskKind), max: Schema.Number, leaseSeconds: Schema.optional(Schema.Number) },
    success: Schema.Array(Lease),
    error: WorkerErrors
  }),
  Rpc.make("task.heartbeat", {
    payload: { ...Caller, ...Fenced, progress: Schema.optional(Schema.Unknown) },
    success: Schema.Struct({ expiresAt: Schema.Number, cancelled: Schema.Boolean }),
    error: WorkerErrors
  }),
  Rpc.make("task.complete", { payload: { ...Caller, ...Fenced, result: Schema.Unknown }, success: Schema.Void, error: WorkerErrors }),
  Rpc.make("task.fail", {
    payload: Schema.Struct({
      ...Caller,
      ...Fenced,
      message: Schema.String,
      retryable: Schema.optionalWith(Schema.Boolean, { default: () => true })
    }),
    success: Schema.Void,
    error: WorkerErrors
  }),
  /** Completes many tasks in one call (one group commit); each item reports its own outcome. */
  Rpc.make("task.completeBatch", {
    payload: { ...Caller, items: Schema.Array(Schema.Struct({ ...Fenced, result: Schema.Unknown })) },
    success: Schema.Array(Schema.Struct({ taskId: TaskId, ok: Schema.Boolean, error: Schema.optional(Schema.String) })),
    error: Forbidden
  }),
  /** Streamed parts of a remote agent turn, appended to the task's child session. */
  Rpc.make("task.progress", {
    payload: { ...Caller, ...Fenced, parts: Schema.Array(Schema.Unknown) },
    success: Schema.Void,
    error: WorkerErrors
  })
)
  .annotateRpcs(Requires, Access.worker)
  .middleware(AuthMiddleware) {}
