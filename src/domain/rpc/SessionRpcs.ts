import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { Access, Requires } from "../Access.js"
import { Forbidden, InvalidInput, NotFound } from "../Errors.js"
import { ProjectId, SessionId } from "../Ids.js"
import {
  CreateSession,
  PromptInput,
  PromptResult,
  QueuedPrompt,
  QueuedPromptId,
  SessionBusy,
  SessionHistory,
  SessionInfo,
  Totals
} from "../Session.js"
import { AuthMiddleware } from "./Middleware.js"

const Refusals = Schema.Union(NotFound, Forbidden)
const viewer = Access.project("viewer", "read")
const member = Access.project("member", "write")
const InSession = { projectId: ProjectId, sessionId: SessionId }

/**
 * Agent sessions. Viewers of a project read them; members create sessions, prompt and cancel.
 * A turn's progress is not returned here: it arrives as events on `events.subscribe`.
 */
export class SessionRpcs extends RpcGroup.make(
  Rpc.make("create", { payload: CreateSession, success: SessionInfo, error: Schema.Union(NotFound, Forbidden, InvalidInput) }).annotate(Requires, member),
  Rpc.make("list", {
    payload: { projectId: ProjectId, parentId: Schema.optional(SessionId) },
    success: Schema.Array(SessionInfo),
    error: Refusals
  }).annotate(Requires, viewer),
  Rpc.make("get", { payload: InSession, success: SessionHistory, error: Refusals }).annotate(Requires, viewer),
  Rpc.make("prompt", { payload: PromptInput, success: PromptResult, error: Schema.Union(NotFound, Forbidden, InvalidInput, SessionBusy) }).annotate(
    Requires,
    member
  ),
  /** Stops the running turn; with `clearQueue` the queued prompts are dropped too, else the next one starts. */
  Rpc.make("cancel", {
    payload: { ...InSession, clearQueue: Schema.optional(Schema.Boolean) },
    success: Schema.Struct({ cancelled: Schema.Boolean }),
    error: Refusals
  }).annotate(Requires, member),
  Rpc.make("queue", { payload: InSession, success: Schema.Array(QueuedPrompt), error: Refusals }).annotate(Requires, viewer),
  Rpc.make("dequeue", { payload: { ...InSession, promptId: QueuedPromptId }, success: Schema.Void, error: Refusals }).annotate(Requires, member),
  Rpc.make("totals", {
    payload: { projectId: ProjectId, sessionId: Schema.optional(SessionId) },
    success: Totals,
    error: Refusals
  }).annotate(Requires, viewer)
).prefix("session.").middleware(AuthMiddleware) {}
