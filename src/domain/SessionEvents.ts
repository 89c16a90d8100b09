import { Schema } from "effect"
import { MessageId, PartId, SessionId } from "./Ids.js"
import { Message, Part, QueuedPrompt, QueuedPromptId, SessionInfo, SessionStatus } from "./Session.js"

export const SessionCreated = Schema.TaggedStruct("SessionCreated", { session: SessionInfo })
/** Title, status, totals or archived flag changed. */
export const SessionUpdated = Schema.TaggedStruct("SessionUpdated", { session: SessionInfo })
/** The session was deleted, with its messages, parts, queued prompts and permission requests. */
export const SessionDeleted = Schema.TaggedStruct("SessionDeleted", { sessionId: SessionId })
export const SessionStatusChanged = Schema.TaggedStruct("SessionStatus", { sessionId: SessionId, status: SessionStatus })
export const MessageUpdated = Schema.TaggedStruct("MessageUpdated", { message: Message })
/** A part appeared or changed; it carries the part's whole current state. */
export const PartUpdated = Schema.TaggedStruct("PartUpdated", { part: Part })
/** Text appended to a text or reasoning part (or to a tool call's streamed input). */
export const PartDelta = Schema.TaggedStruct("PartDelta", {
  sessionId: SessionId,
  messageId: MessageId,
  partId: PartId,
  delta: Schema.String
})
export const PromptQueued = Schema.TaggedStruct("PromptQueued", { prompt: QueuedPrompt })
/** A queued prompt left the queue: its turn `started`, or it was `cancelled`. */
export const PromptDequeued = Schema.TaggedStruct("PromptDequeued", {
  sessionId: SessionId,
  promptId: QueuedPromptId,
  reason: Schema.Literal("started", "cancelled")
})

export const SessionEvent = Schema.Union(
  SessionCreated,
  SessionUpdated,
  SessionDeleted,
  SessionStatusChanged,
  MessageUpdated,
  PartUpdated,
  PartDelta,
  PromptQueued,
  PromptDequeued
)
export type SessionEvent = typeof SessionEvent.Type
