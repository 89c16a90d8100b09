import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { Access, Requires } from "../Access.js"
import { SubscriptionItem } from "../Event.js"
import { Forbidden, NotFound } from "../Errors.js"
import { ProjectId } from "../Ids.js"
import { AuthMiddleware } from "./Middleware.js"

export class EventRpcs extends RpcGroup.make(
  Rpc.make("subscribe", {
    /**
     * Without `since`: live from now (`Ready` first). With `since`: every event after it from the
     * project's log, then `Ready`, then live — no gap, no duplicate; `Reset` first when `since` is
     * older than the retained log.
     */
    payload: { projectId: ProjectId, since: Schema.optional(Schema.NonNegativeInt) },
    success: SubscriptionItem,
    error: Schema.Union(NotFound, Forbidden),
    stream: true
  }).annotate(Requires, Access.project("viewer", "read"))
)
  .prefix("events.")
  .middleware(AuthMiddleware) {}
