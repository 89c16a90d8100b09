import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { Access, Requires } from "../Access.js"
import { SubscriptionItem } from "../Event.js"
import { Forbidden, NotFound } from "../Errors.js"
import { ProjectId } from "../Ids.js"
import { AuthMiddleware } from "./Middleware.js"

export class EventRpcs extends RpcGroup.make(
  Rpc.make("subscribe", {
    payload: { projectId: ProjectId },
    success: SubscriptionItem,
    error: Schema.Union(NotFound, Forbidden),
    stream: true
  }).annotate(Requires, Access.project("viewer", "read"))
).prefix("events.").middleware(AuthMiddleware) {}
