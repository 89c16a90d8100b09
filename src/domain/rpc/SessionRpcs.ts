import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { Access, Requires } from "../Access.js"
import { Forbidden, InvalidInput, NotFound } from "../Errors.js"
import { FileLocked, FileTooLarge, PathRefused, QuotaExceeded, RevertConflict, RevertResult } from "../File.js"
import { MessageId, ProjectId, SessionId } from "../Ids.js"
import {
  CreateSession,
  PromptInput,
  PromptResult,
  QueuedPrompt,
  QueuedPromptId,
  SessionBusy,
  SessionHistory,
  SessionInfo,
  SessionTitle,
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
  Rpc.make("create", { payload: CreateSession, success: SessionInfo, error: Schema.Union(NotFound, Forbidden, InvalidInput) }).annotate(
    Requires,
    member
  ),
  Rpc.make("list", {
    payload: { projectId: ProjectId, parentId: Schema.optional(SessionId), includeArchived: Schema.optional(Schema.Boolean) },
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
  }).annotate(Requires, viewer),
  Rpc.make("rename", {
    payload: { ...InSession, title: SessionTitle },
    success: SessionInfo,
    error: Schema.Union(NotFound, Forbidden, InvalidInput)
  }).annotate(Requires, member),
  /** Archives (default) or, with `archived: false`, unarchives; archived sessions leave `session.list` unless asked for. */
  Rpc.make("archive", {
    payload: { ...InSession, archived: Schema.optional(Schema.Boolean) },
    success: SessionInfo,
    error: Refusals
  }).annotate(Requires, member),
  /** Deletes the session, its sub-agents' sessions and all they hold; a running turn is cancelled first. */
  Rpc.make("delete", { payload: InSession, success: Schema.Void, error: Refusals }).annotate(Requires, member)
)
  .prefix("session.")
  .middleware(AuthMiddleware) {}

/**
 * `session.revert`: puts back the workspace files the session's tool calls changed (those of
 * `toMessageId` and later messages, else all of them). Files changed by someone else since fail
 * with RevertConflict unless `force`. A group of its own so the file handlers serve it.
 */
export class SessionRevertRpcs extends RpcGroup.make(
  Rpc.make("revert", {
    payload: { ...InSession, toMessageId: Schema.optional(MessageId), force: Schema.optional(Schema.Boolean) },
    success: RevertResult,
    error: Schema.Union(NotFound, Forbidden, PathRefused, RevertConflict, FileLocked, FileTooLarge, QuotaExceeded)
  }).annotate(Requires, member)
)
  .prefix("session.")
  .middleware(AuthMiddleware) {}
