import { Schema } from "effect"
import { MessageId, PermissionRequestId, ProjectId, SessionId } from "./Ids.js"

export const PermissionAction = Schema.Literal("allow", "deny", "ask")
export type PermissionAction = typeof PermissionAction.Type

/** Where a rule comes from: built into Kiris, stored for the project, or granted for one session. */
export const RuleSource = Schema.Literal("default", "project", "session")
export type RuleSource = typeof RuleSource.Type

/**
 * `tool` is a tool name or `*`. `pattern` is matched against what the call touches: a
 * workspace-relative path glob for file tools (`src/**`, `*.md`), a command with `*` wildcards for
 * `bash` (`git status*`), a name for `task`/`enqueue`; `*` alone matches anything.
 */
export class PermissionRule extends Schema.Class<PermissionRule>("PermissionRule")({
  id: Schema.String,
  source: RuleSource,
  sessionId: Schema.NullOr(SessionId),
  tool: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128)),
  pattern: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(4096)),
  action: PermissionAction,
  createdBy: Schema.NullOr(Schema.String),
  createdAt: Schema.Number
}) {}

/**
 * `once` allows this call; `session` also allows the same tool and pattern for the rest of the
 * session; `always` stores a project rule; `reject` refuses, and its message is the tool error.
 */
export const PermissionReply = Schema.Literal("once", "session", "always", "reject")
export type PermissionReply = typeof PermissionReply.Type

/**
 * `expired`: nobody answered in time, or the turn that asked ended first (cancelled, failed,
 * interrupted, or the hub restarted); the call was refused and the request can no longer be answered.
 */
export const PermissionRequestStatus = Schema.Literal("pending", "allowed", "rejected", "expired")
export type PermissionRequestStatus = typeof PermissionRequestStatus.Type

export class PermissionRequest extends Schema.Class<PermissionRequest>("PermissionRequest")({
  id: PermissionRequestId,
  projectId: ProjectId,
  sessionId: SessionId,
  messageId: MessageId,
  toolCallId: Schema.NullOr(Schema.String),
  tool: Schema.String,
  /** What the rules matched: a path, a command or a name. */
  subject: Schema.String,
  /** A one-line description for whoever answers. */
  title: Schema.String,
  input: Schema.Unknown,
  requestedBy: Schema.String,
  status: PermissionRequestStatus,
  reply: Schema.NullOr(PermissionReply),
  message: Schema.NullOr(Schema.String),
  repliedBy: Schema.NullOr(Schema.String),
  createdAt: Schema.Number,
  repliedAt: Schema.NullOr(Schema.Number)
}) {}

export class ReplyPermission extends Schema.Class<ReplyPermission>("ReplyPermission")({
  projectId: ProjectId,
  requestId: PermissionRequestId,
  reply: PermissionReply,
  /** For `reject`: what the model is told. */
  message: Schema.optional(Schema.String.pipe(Schema.maxLength(4096))),
  /** For `session`/`always`: the pattern to allow (defaults to the request's exact subject). */
  pattern: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(4096)))
}) {}

export class SetPermissionRule extends Schema.Class<SetPermissionRule>("SetPermissionRule")({
  projectId: ProjectId,
  tool: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128)),
  pattern: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(4096)),
  action: PermissionAction
}) {}

/** The request can no longer be answered: it timed out or the turn that asked has ended. */
export class PermissionExpired extends Schema.TaggedError<PermissionExpired>()("PermissionExpired", {
  requestId: PermissionRequestId,
  reason: Schema.String
}) {
  override get message() {
    return `permission request ${this.requestId} has expired: ${this.reason}`
  }
}
