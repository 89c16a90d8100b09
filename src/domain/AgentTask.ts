import { Schema } from "effect"
import { SessionId } from "./Ids.js"
import { Workdir } from "./Task.js"

/** Payload of an `agent` task: one agent turn of a sub-agent's child session, run by a worker. */
export const AgentPayload = Schema.Struct({
  sessionId: SessionId,
  prompt: Schema.String,
  /** `provider:model`; the worker's default model when absent. */
  model: Schema.optional(Schema.String),
  instructions: Schema.optional(Schema.String),
  maxSteps: Schema.optional(Schema.Number),
  workdir: Schema.optional(Workdir)
})
export type AgentPayload = typeof AgentPayload.Type

const Usage = Schema.Struct({
  inputTokens: Schema.optional(Schema.Number),
  outputTokens: Schema.optional(Schema.Number),
  inputTokenDetails: Schema.optional(Schema.Struct({ cacheReadTokens: Schema.optional(Schema.Number) })),
  outputTokenDetails: Schema.optional(Schema.Struct({ reasoningTokens: Schema.optional(Schema.Number) }))
})

/**
 * One stream part of a remote agent turn as a worker sends it with `task.progress`: the AI SDK's
 * stream part reduced to plain JSON (errors as text, no request/response metadata).
 */
export const AgentPart = Schema.Struct({
  type: Schema.String,
  id: Schema.optional(Schema.String),
  text: Schema.optional(Schema.String),
  delta: Schema.optional(Schema.String),
  toolCallId: Schema.optional(Schema.String),
  toolName: Schema.optional(Schema.String),
  input: Schema.optional(Schema.Unknown),
  output: Schema.optional(Schema.Unknown),
  invalid: Schema.optional(Schema.Boolean),
  error: Schema.optional(Schema.String),
  finishReason: Schema.optional(Schema.String),
  usage: Schema.optional(Usage)
})
export type AgentPart = typeof AgentPart.Type

/** What a worker completes an `agent` task with. */
export const AgentResult = Schema.Struct({
  text: Schema.String,
  /** How many parts were sent with `task.progress`, so the hub knows when it has them all. */
  parts: Schema.Number,
  model: Schema.String,
  usage: Schema.Struct({ inputTokens: Schema.Number, outputTokens: Schema.Number })
})
export type AgentResult = typeof AgentResult.Type
