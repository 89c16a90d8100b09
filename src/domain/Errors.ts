import { Schema } from "effect"

/** The caller presented no token, or one that is malformed, expired or revoked. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  reason: Schema.String
}) {}

/** The caller is known but lacks the role, scope or capability the operation needs. */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  reason: Schema.String
}) {}

export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  entity: Schema.String,
  id: Schema.String
}) {
  override get message() {
    return `${this.entity} not found: ${this.id}`
  }
}

export class Conflict extends Schema.TaggedError<Conflict>()("Conflict", {
  reason: Schema.String
}) {}

export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  reason: Schema.String
}) {}

/** A destructive operation's `confirm` did not repeat the name of what it destroys. */
export class ConfirmMismatch extends Schema.TaggedError<ConfirmMismatch>()("ConfirmMismatch", {
  entity: Schema.String,
  id: Schema.String,
  reason: Schema.String
}) {}

/** Too many recent attempts (e.g. failed logins for one user name); try again after `retryAfterSeconds`. */
export class TooManyRequests extends Schema.TaggedError<TooManyRequests>()("TooManyRequests", {
  reason: Schema.String,
  retryAfterSeconds: Schema.Int
}) {}

/**
 * A project's workspace directory cannot be reached on this hub (missing, or not a directory):
 * hubs sharing a database share the data dir and the workspaces too, so they need the same
 * filesystem mounted at the same paths. What needs the files (turns, tools, file reads and writes)
 * fails with this; listing and deleting the project still work.
 */
export class WorkspaceUnreachable extends Schema.TaggedError<WorkspaceUnreachable>()("WorkspaceUnreachable", {
  projectId: Schema.String,
  path: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return this.reason
  }
}
