import { Schema } from "effect"
import { FileAuthor, FileVersion } from "./File.js"
import { SessionId } from "./Ids.js"

/** A workspace file got a new recorded version (a write, an external change found, a deletion). */
export const FileChanged = Schema.TaggedStruct("FileChanged", {
  path: Schema.String,
  version: FileVersion,
  author: FileAuthor
})

/**
 * A revert of a session's changes or a snapshot restore wrote these paths back. `snapshotId`: for
 * a restore, the snapshot restored; for a session revert, the snapshot taken just before it
 * (restoring that one undoes the revert).
 */
export const FilesReverted = Schema.TaggedStruct("FilesReverted", {
  paths: Schema.Array(Schema.String),
  sessionId: Schema.optional(SessionId),
  snapshotId: Schema.optional(Schema.Number)
})

export const FileEvent = Schema.Union(FileChanged, FilesReverted)
export type FileEvent = typeof FileEvent.Type
