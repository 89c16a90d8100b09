import { Schema } from "effect"

/** A stored row did not match the shape the code reads it as (a damaged or foreign database). */
export class StorageError extends Schema.TaggedError<StorageError>()("StorageError", {
  /** What was being read, e.g. `file_versions by path`. */
  query: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `stored data does not match (${this.query}): ${this.reason}`
  }
}
