import { Schema } from "effect"
import { Principal } from "../domain/Auth.js"
import { MessageId, PartId, type ProjectId, SessionId } from "../domain/Ids.js"
import {
  Message,
  MessageRole,
  MessageStatus,
  Part,
  PartData,
  QueuedPrompt,
  QueuedPromptId,
  SessionInfo,
  SessionStatus,
  Usage
} from "../domain/Session.js"
import { Int, NullableInt, NullableReal } from "../storage/Rows.js"

/** Rows of the session tables as the database returns them, and their decoding into domain values. */

const usageColumns = {
  input_tokens: Int,
  output_tokens: Int,
  reasoning_tokens: Int,
  cached_tokens: Int,
  /** USD; NULL when unknown. */
  cost: NullableReal
}
export const UsageRow = Schema.Struct(usageColumns)
export type UsageRow = typeof UsageRow.Type
export const SessionRow = Schema.Struct({
  ...usageColumns,
  id: SessionId,
  parent_id: Schema.NullOr(SessionId),
  title: Schema.String,
  agent: Schema.String,
  model: Schema.String,
  status: SessionStatus,
  created_at: Int,
  updated_at: Int,
  archived_at: NullableInt
})
export type SessionRow = typeof SessionRow.Type
export const MessageRow = Schema.Struct({
  ...usageColumns,
  id: MessageId,
  session_id: SessionId,
  role: MessageRole,
  status: MessageStatus,
  model: Schema.NullOr(Schema.String),
  finish_reason: Schema.NullOr(Schema.String),
  error: Schema.NullOr(Schema.String),
  created_at: Int,
  completed_at: NullableInt
})
export type MessageRow = typeof MessageRow.Type
export const PartJson = Schema.parseJson(PartData)
export const PartRow = Schema.Struct({
  id: PartId,
  message_id: MessageId,
  session_id: SessionId,
  idx: Int,
  data: PartJson
})
export type PartRow = typeof PartRow.Type
export const PrincipalJson = Schema.parseJson(Principal)
export const QueuedRow = Schema.Struct({
  id: QueuedPromptId,
  session_id: SessionId,
  text: Schema.String,
  author: Schema.String,
  caller: PrincipalJson,
  created_at: Int
})
export type QueuedRow = typeof QueuedRow.Type

export const toUsage = (r: UsageRow) =>
  Usage.make({
    inputTokens: r.input_tokens,
    outputTokens: r.output_tokens,
    reasoningTokens: r.reasoning_tokens,
    cachedTokens: r.cached_tokens,
    cost: r.cost
  })
export const toSession = (projectId: ProjectId) => (r: SessionRow) =>
  SessionInfo.make({
    id: r.id,
    projectId,
    title: r.title,
    agent: r.agent,
    model: r.model,
    parentId: r.parent_id,
    status: r.status,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    totals: toUsage(r),
    archived: r.archived_at !== null
  })
export const toMessage = (r: MessageRow) =>
  Message.make({
    id: r.id,
    sessionId: r.session_id,
    role: r.role,
    status: r.status,
    model: r.model,
    finishReason: r.finish_reason,
    usage: toUsage(r),
    error: r.error,
    createdAt: r.created_at,
    completedAt: r.completed_at
  })
export const toQueued = (r: QueuedRow) =>
  QueuedPrompt.make({ id: r.id, sessionId: r.session_id, text: r.text, author: r.author, createdAt: r.created_at })
export const toPart = (r: PartRow) => Part.make({ id: r.id, sessionId: r.session_id, messageId: r.message_id, index: r.idx, data: r.data })

export const encodePart = Schema.encode(PartJson)
