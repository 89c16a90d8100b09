import { Schema } from "effect"
import { MessageId, SessionId, UserId } from "./Ids.js"

/** A person writing through the hub (upload, REST, CLI). */
export const UserAuthor = Schema.Struct({ kind: Schema.Literal("user"), userId: UserId })
export type UserAuthor = typeof UserAuthor.Type

/** A tool call of an agent turn (`toolCallId` null when the tool was run outside the model's tool loop). */
export const SessionAuthor = Schema.Struct({
  kind: Schema.Literal("session"),
  sessionId: SessionId,
  messageId: MessageId,
  toolCallId: Schema.NullOr(Schema.String)
})
export type SessionAuthor = typeof SessionAuthor.Type

/** A change found on disk that did not go through the hub. */
export const ExternalAuthor = Schema.Struct({ kind: Schema.Literal("external") })
export type ExternalAuthor = typeof ExternalAuthor.Type

/** A revert or snapshot restore, and who asked for it. */
export const RevertAuthor = Schema.Struct({ kind: Schema.Literal("revert"), by: Schema.Union(UserAuthor, SessionAuthor) })
export type RevertAuthor = typeof RevertAuthor.Type

export const FileAuthor = Schema.Union(UserAuthor, SessionAuthor, ExternalAuthor, RevertAuthor)
export type FileAuthor = typeof FileAuthor.Type

/** Who may ask for a revert or a restore. */
export const RevertRequester = Schema.Union(UserAuthor, SessionAuthor)
export type RevertRequester = typeof RevertRequester.Type

/**
 * One recorded state of a workspace file. `id` increases across the whole project, so it orders
 * versions of every path. A deletion has `hash: null`, `size: 0` and `deleted: true`.
 */
export class FileVersion extends Schema.Class<FileVersion>("FileVersion")({
  id: Schema.Number,
  /** Relative to the workspace root, `/`-separated. */
  path: Schema.String,
  /** sha256 of the content, hex; null for a deletion. */
  hash: Schema.NullOr(Schema.String),
  size: Schema.Number,
  author: FileAuthor,
  createdAt: Schema.Number,
  deleted: Schema.Boolean
}) {}

/** A directory listing entry of the workspace, with the latest recorded version of a file. */
export class FileEntry extends Schema.Class<FileEntry>("FileEntry")({
  name: Schema.String,
  path: Schema.String,
  type: Schema.Literal("file", "dir"),
  size: Schema.Number,
  latestVersion: Schema.NullOr(Schema.Number)
}) {}

/** The latest version of every recorded path at one moment; `restore` brings the workspace back to it. */
export class FileSnapshot extends Schema.Class<FileSnapshot>("FileSnapshot")({
  id: Schema.Number,
  label: Schema.String,
  createdAt: Schema.Number,
  author: FileAuthor,
  /** Files (not deleted) the snapshot holds a version of. */
  files: Schema.Number
}) {}

/** A session's hold on a path while its turn runs; others' writes to the path wait, then fail. */
export class FileLock extends Schema.Class<FileLock>("FileLock")({
  path: Schema.String,
  sessionId: SessionId,
  messageId: MessageId,
  expiresAt: Schema.Number
}) {}

/**
 * What a revert or restore changed: the paths it wrote back (or deleted) and the versions it
 * recorded for them. `snapshotId` is the snapshot taken automatically just before; restoring it
 * undoes the revert.
 */
export class RevertResult extends Schema.Class<RevertResult>("RevertResult")({
  restored: Schema.Array(Schema.String),
  versions: Schema.Array(FileVersion),
  snapshotId: Schema.Number
}) {}

export class FileDiff extends Schema.Class<FileDiff>("FileDiff")({
  path: Schema.String,
  from: Schema.Number,
  to: Schema.Number,
  /** A unified diff; empty when either side is binary or both are the same. */
  unified: Schema.String,
  binary: Schema.Boolean
}) {}

export class FileHistoryPage extends Schema.Class<FileHistoryPage>("FileHistoryPage")({
  versions: Schema.Array(FileVersion),
  /** Pass as `cursor` for the next (older) page; null on the last page. */
  next: Schema.NullOr(Schema.Number)
}) {}

/** Another session's turn holds the path's edit lock. */
export class FileLocked extends Schema.TaggedError<FileLocked>()("FileLocked", {
  path: Schema.String,
  holder: SessionId
}) {
  override get message() {
    return `FileLocked: ${this.path} is being edited by session ${this.holder}; try again after its turn ends`
  }
}

/** Files a revert or restore would overwrite were changed by someone else since; `force` overrides. */
export class RevertConflict extends Schema.TaggedError<RevertConflict>()("RevertConflict", {
  paths: Schema.Array(Schema.String)
}) {
  override get message() {
    return `RevertConflict: changed by someone else since: ${this.paths.join(", ")}`
  }
}

export class FileTooLarge extends Schema.TaggedError<FileTooLarge>()("FileTooLarge", {
  path: Schema.String,
  size: Schema.Number,
  limit: Schema.Number
}) {
  override get message() {
    return `FileTooLarge: ${this.path} is ${this.size} bytes; the limit is ${this.limit}`
  }
}

/** Storing the content would take the project's stored file contents over `fileQuotaBytes`. */
export class QuotaExceeded extends Schema.TaggedError<QuotaExceeded>()("QuotaExceeded", {
  used: Schema.Number,
  needed: Schema.Number,
  limit: Schema.Number
}) {
  override get message() {
    return `QuotaExceeded: the project stores ${this.used} bytes of file contents; ${this.needed} more would pass the limit of ${this.limit}`
  }
}

/** The path escapes the workspace, goes through a symlink leading out, or is off limits. */
export class PathRefused extends Schema.TaggedError<PathRefused>()("PathRefused", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `PathRefused: ${this.reason}`
  }
}
