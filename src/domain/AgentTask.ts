import { Schema } from "effect"
import { MessageId, SessionId } from "./Ids.js"
import { Workdir } from "./Task.js"

/**
 * The tools a worker offers a remote agent turn: the file tools and `bash` (which runs only on a
 * worker started with `--trust-shell`). Never `task` or `enqueue`: a worker has no sessions to
 * start sub-agents in, and its key may not enqueue work.
 */
export const RemoteToolNames = ["read", "write", "edit", "list", "glob", "grep", "bash"] as const
export type RemoteToolName = (typeof RemoteToolNames)[number]

/**
 * Whether an `agent` task's turn may run commands on its worker: its tools include `bash`, or it
 * names none (every tool the worker offers). Enqueuing such a task needs the `execute` grant.
 */
export const agentRunsCommands = (payload: unknown): boolean => {
  const tools = typeof payload === "object" && payload !== null ? (payload as { tools?: unknown }).tools : undefined
  return !Array.isArray(tools) || tools.includes("bash")
}

/** Payload of an `agent` task: one agent turn of a sub-agent's child session, run by a worker. */
export const AgentPayload = Schema.Struct({
  sessionId: SessionId,
  /** The hub's assistant message the turn's parts are recorded into. */
  messageId: Schema.optional(MessageId),
  prompt: Schema.String,
  /** `provider:model`; the worker's default model when absent. */
  model: Schema.optional(Schema.String),
  instructions: Schema.optional(Schema.String),
  maxSteps: Schema.optional(Schema.Number),
  workdir: Schema.optional(Workdir),
  /** Names of the tools the turn may call (those the worker offers, of `RemoteToolNames`); all of them when absent. */
  tools: Schema.optional(Schema.Array(Schema.String))
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
