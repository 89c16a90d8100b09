import { Schema } from "effect"
import { MessageId, PartId, ProjectId, SessionId } from "./Ids.js"

export const QueuedPromptId = Schema.String.pipe(Schema.brand("QueuedPromptId"))
export type QueuedPromptId = typeof QueuedPromptId.Type

/**
 * Token counts and cost of a message, a session or a project. `cost` is USD: the provider's own
 * figure when it reports one, else computed from the price table (src/llm/Prices.ts and the
 * `modelPrices` setting); `null` when unknown (a model without a price). A sum with any unknown
 * part is unknown: a session or project total is `null` as soon as one of its messages is.
 */
export class Usage extends Schema.Class<Usage>("Usage")({
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  reasoningTokens: Schema.Number,
  cachedTokens: Schema.Number,
  cost: Schema.NullOr(Schema.Number)
}) {
  static readonly zero = Usage.make({ inputTokens: 0, outputTokens: 0, reasoningTokens: 0, cachedTokens: 0, cost: 0 })
  static readonly add = (a: Usage, b: Usage) =>
    Usage.make({
      inputTokens: a.inputTokens + b.inputTokens,
      outputTokens: a.outputTokens + b.outputTokens,
      reasoningTokens: a.reasoningTokens + b.reasoningTokens,
      cachedTokens: a.cachedTokens + b.cachedTokens,
      cost: a.cost === null || b.cost === null ? null : a.cost + b.cost
    })
}

/** `input_required`: the running turn waits for an answer to a permission request (see the inbox). */
export const SessionStatus = Schema.Literal("idle", "running", "input_required")
export type SessionStatus = typeof SessionStatus.Type

export class SessionInfo extends Schema.Class<SessionInfo>("SessionInfo")({
  id: SessionId,
  projectId: ProjectId,
  title: Schema.String,
  /** Name of the agent (system prompt and tool set) the session runs. */
  agent: Schema.String,
  /** `provider:model`, e.g. `openai:gpt-4o-mini`. */
  model: Schema.String,
  /** The parent session of a sub-agent's session. */
  parentId: Schema.NullOr(SessionId),
  status: SessionStatus,
  createdAt: Schema.Number,
  updatedAt: Schema.Number,
  totals: Usage,
  /** Archived sessions are left out of `session.list` unless it asks for them. */
  archived: Schema.optionalWith(Schema.Boolean, { default: () => false })
}) {}

/** A title given by a user (rename); created sessions may start untitled. */
export const SessionTitle = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))

export class CreateSession extends Schema.Class<CreateSession>("CreateSession")({
  projectId: ProjectId,
  title: Schema.optional(Schema.String.pipe(Schema.maxLength(200))),
  agent: Schema.optional(Schema.String),
  model: Schema.optional(Schema.String)
}) {}

export const MessageRole = Schema.Literal("user", "assistant")
export type MessageRole = typeof MessageRole.Type

/** `interrupted`: the hub stopped while the message was being written; it is never resumed. */
export const MessageStatus = Schema.Literal("running", "completed", "error", "cancelled", "interrupted")
export type MessageStatus = typeof MessageStatus.Type

export class Message extends Schema.Class<Message>("Message")({
  id: MessageId,
  sessionId: SessionId,
  role: MessageRole,
  status: MessageStatus,
  /** The model that wrote an assistant message. */
  model: Schema.NullOr(Schema.String),
  /**
   * `stop`, `tool-calls`, `length`, `error`, … as reported by the model; `max-steps` when the turn
   * hit `agentMaxSteps` with the model still calling tools (the message then ends `error`).
   */
  finishReason: Schema.NullOr(Schema.String),
  usage: Usage,
  error: Schema.NullOr(Schema.String),
  createdAt: Schema.Number,
  completedAt: Schema.NullOr(Schema.Number)
}) {}

export const ToolCallStatus = Schema.Literal("pending", "running", "completed", "error")
export type ToolCallStatus = typeof ToolCallStatus.Type

export const TextPart = Schema.TaggedStruct("text", { text: Schema.String })
export const ReasoningPart = Schema.TaggedStruct("reasoning", { text: Schema.String })
/** A tool call and, once it ran, its output (or error). `input` is the raw text until the call is complete. */
export const ToolPart = Schema.TaggedStruct("tool", {
  callId: Schema.String,
  tool: Schema.String,
  status: ToolCallStatus,
  input: Schema.Unknown,
  output: Schema.Unknown,
  error: Schema.NullOr(Schema.String)
})
export const FilePart = Schema.TaggedStruct("file", {
  mediaType: Schema.String,
  name: Schema.NullOr(Schema.String),
  /** A `data:` URL, or a path in the project's workspace. */
  url: Schema.String
})
export const StepStartPart = Schema.TaggedStruct("step-start", {})
export const StepFinishPart = Schema.TaggedStruct("step-finish", { finishReason: Schema.String, usage: Usage })

export const PartData = Schema.Union(TextPart, ReasoningPart, ToolPart, FilePart, StepStartPart, StepFinishPart)
export type PartData = typeof PartData.Type

export class Part extends Schema.Class<Part>("Part")({
  id: PartId,
  sessionId: SessionId,
  messageId: MessageId,
  /** Position within the message. */
  index: Schema.Number,
  data: PartData
}) {}

export class MessageWithParts extends Schema.Class<MessageWithParts>("MessageWithParts")({
  message: Message,
  parts: Schema.Array(Part)
}) {}

export class SessionHistory extends Schema.Class<SessionHistory>("SessionHistory")({
  session: SessionInfo,
  messages: Schema.Array(MessageWithParts)
}) {}

/** A prompt waiting for the session's running turn to end. */
export class QueuedPrompt extends Schema.Class<QueuedPrompt>("QueuedPrompt")({
  id: QueuedPromptId,
  sessionId: SessionId,
  text: Schema.String,
  /** Name of the user or key that sent it. */
  author: Schema.String,
  createdAt: Schema.Number
}) {}

/**
 * What `session.prompt` does when a turn is already running: `queue` it for after the turn,
 * `interrupt` the turn and start anew, `reject` it, or `steer`: add it to the running turn, which
 * the model sees before its next call (a turn that ends first is followed by one answering it).
 */
export const PromptMode = Schema.Literal("queue", "interrupt", "reject", "steer")
export type PromptMode = typeof PromptMode.Type

export class PromptInput extends Schema.Class<PromptInput>("PromptInput")({
  projectId: ProjectId,
  sessionId: SessionId,
  text: Schema.String.pipe(Schema.minLength(1)),
  mode: Schema.optionalWith(PromptMode, { default: () => "queue" as const })
}) {}

export const PromptResult = Schema.Union(
  /**
   * The turn started; `messageId` is the user message it answers. With `mode: "steer"` and a turn
   * running, that turn takes the message at its next step boundary.
   */
  Schema.TaggedStruct("Started", { messageId: MessageId }),
  Schema.TaggedStruct("Queued", { prompt: QueuedPrompt })
)
export type PromptResult = typeof PromptResult.Type

export class Totals extends Schema.Class<Totals>("Totals")({
  session: Schema.NullOr(Usage),
  project: Usage
}) {}

/** The session is running a turn and the prompt asked not to wait (`mode: "reject"`). */
export class SessionBusy extends Schema.TaggedError<SessionBusy>()("SessionBusy", {
  sessionId: SessionId
}) {
  override get message() {
    return `session ${this.sessionId} is running a turn`
  }
}
