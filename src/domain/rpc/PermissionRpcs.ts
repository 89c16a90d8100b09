import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { Access, Requires } from "../Access.js"
import { Conflict, Forbidden, InvalidInput, NotFound } from "../Errors.js"
import { ProjectId, SessionId } from "../Ids.js"
import { PermissionExpired, PermissionRequest, PermissionRule, ReplyPermission, SetPermissionRule } from "../Permission.js"
import { AuthMiddleware } from "./Middleware.js"

/**
 * Tool-call permissions. Clients call `pending` right after `events.subscribe` to see requests
 * made before they connected; `reply` needs member or above, `setRule`/`removeRule` admin or above.
 * `reply` fails with `NotFound` for an unknown request, `PermissionExpired` for one whose turn has
 * ended (or that timed out), and `Conflict` for one already answered.
 */
export class PermissionRpcs extends RpcGroup.make(
  Rpc.make("pending", {
    payload: { projectId: ProjectId, sessionId: Schema.optional(SessionId) },
    success: Schema.Array(PermissionRequest),
    error: Schema.Union(NotFound, Forbidden)
  }).annotate(Requires, Access.project("viewer", "read")),
  Rpc.make("reply", {
    payload: ReplyPermission,
    success: PermissionRequest,
    error: Schema.Union(NotFound, Forbidden, Conflict, PermissionExpired)
  }).annotate(Requires, Access.project("member", "write")),
  Rpc.make("rules", {
    payload: { projectId: ProjectId, sessionId: Schema.optional(SessionId) },
    success: Schema.Array(PermissionRule),
    error: Schema.Union(NotFound, Forbidden)
  }).annotate(Requires, Access.project("viewer", "read")),
  Rpc.make("setRule", { payload: SetPermissionRule, success: PermissionRule, error: Schema.Union(NotFound, Forbidden) }).annotate(
    Requires,
    Access.project("admin", "write")
  ),
  Rpc.make("removeRule", {
    payload: { projectId: ProjectId, ruleId: Schema.String },
    success: Schema.Void,
    error: Schema.Union(NotFound, Forbidden, InvalidInput)
  }).annotate(Requires, Access.project("admin", "write"))
)
  .prefix("permission.")
  .middleware(AuthMiddleware) {}
