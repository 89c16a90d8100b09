import { Effect, Schema } from "effect"
import { Principal } from "../domain/Auth.js"
import type { MessageId, PartId, ProjectId, SessionId } from "../domain/Ids.js"
import {
  Message,
  type MessageRole,
  type MessageStatus,
  Part,
  PartData,
  QueuedPrompt,
  type QueuedPromptId,
  SessionInfo,
  type SessionStatus,
  Usage
} from "../domain/Session.js"

/** Rows of the session tables as SQLite returns them, and their decoding into domain values. */

export interface UsageRow {
  readonly input_tokens: number
  readonly output_tokens: number
  readonly reasoning_tokens: number
  readonly cached_tokens: number
  /** USD; NULL when unknown. */
  readonly cost: number | null
}
export interface SessionRow extends UsageRow {
  readonly id: string
  readonly parent_id: string | null
  readonly title: string
  readonly agent: string
  readonly model: string
  readonly status: string
  readonly created_at: number
  readonly updated_at: number
  readonly archived_at: number | null
}
export interface MessageRow extends UsageRow {
  readonly id: string
  readonly session_id: string
  readonly role: string
  readonly status: string
  readonly model: string | null
  readonly finish_reason: string | null
  readonly error: string | null
  readonly created_at: number
  readonly completed_at: number | null
}
export interface PartRow {
  readonly id: string
  readonly message_id: string
  readonly session_id: string
  readonly idx: number
  readonly data: string
}
export interface QueuedRow {
  readonly id: string
  readonly session_id: string
  readonly text: string
  readonly author: string
  readonly caller: string
  readonly created_at: number
}

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
    id: r.id as SessionId,
    projectId,
    title: r.title,
    agent: r.agent,
    model: r.model,
    parentId: r.parent_id as SessionId | null,
    status: r.status as SessionStatus,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    totals: toUsage(r),
    archived: r.archived_at !== null
  })
export const toMessage = (r: MessageRow) =>
  Message.make({
    id: r.id as MessageId,
    sessionId: r.session_id as SessionId,
    role: r.role as MessageRole,
    status: r.status as MessageStatus,
    model: r.model,
    finishReason: r.finish_reason,
    usage: toUsage(r),
    error: r.error,
    createdAt: r.created_at,
    completedAt: r.completed_at
  })
export const toQueued = (r: QueuedRow) =>
  QueuedPrompt.make({
    id: r.id as QueuedPromptId,
    sessionId: r.session_id as SessionId,
    text: r.text,
    author: r.author,
    createdAt: r.created_at
  })

export const PartJson = Schema.parseJson(PartData)
export const encodePart = Schema.encode(PartJson)
export const decodePart = Schema.decode(PartJson)
export const PrincipalJson = Schema.parseJson(Principal)

export const toPart = (r: PartRow) =>
  Effect.map(decodePart(r.data), (data) =>
    Part.make({ id: r.id as PartId, sessionId: r.session_id as SessionId, messageId: r.message_id as MessageId, index: r.idx, data })
  )
