import { Schema } from "effect"

/** A model string cannot be used: unknown provider, malformed, or its provider is not configured. */
export class ModelError extends Schema.TaggedError<ModelError>()("ModelError", {
  model: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return this.model === "" ? this.reason : `model ${this.model}: ${this.reason}`
  }
}
