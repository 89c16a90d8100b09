import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { Access, Requires } from "../Access.js"
import { Forbidden, InvalidInput, NotFound } from "../Errors.js"
import { ProjectId, SessionId } from "../Ids.js"
import { JoinPresence, NotPresent, PresenceEntry, PresenceLimit, TypingResult } from "../Presence.js"
import { AuthMiddleware } from "./Middleware.js"

/**
 * Who is connected to a project. Presence belongs to the calling connection: `join` (again, to
 * move to another session or as a heartbeat), `heartbeat`, `typing` and `leave` act on this
 * connection's entry, which also ends when the connection closes or sends none of these for
 * `presenceTimeoutSeconds`. Changes arrive as `Presence` items on `events.subscribe`; `list` gives
 * the current state. `join` fails `PresenceLimit` over `presenceMaxPerConnection` projects and
 * `NotFound` for a session not in the project; `heartbeat` and `typing` fail `NotPresent` when
 * the connection has not joined (or its entry expired: join again).
 */
export class PresenceRpcs extends RpcGroup.make(
  Rpc.make("join", {
    payload: JoinPresence,
    success: PresenceEntry,
    error: Schema.Union(NotFound, Forbidden, InvalidInput, PresenceLimit)
  }).annotate(Requires, Access.project("viewer", "read")),
  Rpc.make("leave", {
    payload: { projectId: ProjectId },
    success: Schema.Boolean,
    error: Schema.Union(NotFound, Forbidden)
  }).annotate(Requires, Access.project("viewer", "read")),
  Rpc.make("heartbeat", {
    payload: { projectId: ProjectId },
    success: PresenceEntry,
    error: Schema.Union(NotFound, Forbidden, NotPresent)
  }).annotate(Requires, Access.project("viewer", "read")),
  Rpc.make("list", {
    payload: { projectId: ProjectId },
    success: Schema.Array(PresenceEntry),
    error: Schema.Union(NotFound, Forbidden)
  }).annotate(Requires, Access.project("viewer", "read")),
  Rpc.make("typing", {
    payload: { projectId: ProjectId, sessionId: SessionId },
    success: TypingResult,
    error: Schema.Union(NotFound, Forbidden, NotPresent)
  }).annotate(Requires, Access.project("viewer", "read"))
)
  .prefix("presence.")
  .middleware(AuthMiddleware) {}
