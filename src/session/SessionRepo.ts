import { SqlClient } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { Principal } from "../domain/Auth.js"
import type { MessageId, PartId, ProjectId, SessionId } from "../domain/Ids.js"
import {
  Message,
  type MessageRole,
  type MessageStatus,
  MessageWithParts,
  Part,
  PartData,
  QueuedPrompt,
  type QueuedPromptId,
  SessionInfo,
  type SessionStatus,
  Usage
} from "../domain/Session.js"

interface UsageRow {
  readonly input_tokens: number
  readonly output_tokens: number
  readonly reasoning_tokens: number
  readonly cached_tokens: number
  /** USD; NULL when unknown. */
  readonly cost: number | null
}
interface SessionRow extends UsageRow {
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
interface MessageRow extends UsageRow {
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
interface PartRow {
  readonly id: string
  readonly message_id: string
  readonly session_id: string
  readonly idx: number
  readonly data: string
}
interface QueuedRow {
  readonly id: string
  readonly session_id: string
  readonly text: string
  readonly author: string
  readonly caller: string
  readonly created_at: number
}

const toUsage = (r: UsageRow) =>
  Usage.make({
    inputTokens: r.input_tokens,
    outputTokens: r.output_tokens,
    reasoningTokens: r.reasoning_tokens,
    cachedTokens: r.cached_tokens,
    cost: r.cost
  })
const toSession = (projectId: ProjectId) => (r: SessionRow) =>
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
const toMessage = (r: MessageRow) =>
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
const toQueued = (r: QueuedRow) =>
  QueuedPrompt.make({
    id: r.id as QueuedPromptId,
    sessionId: r.session_id as SessionId,
    text: r.text,
    author: r.author,
    createdAt: r.created_at
  })

const PartJson = Schema.parseJson(PartData)
const encodePart = Schema.encode(PartJson)
const decodePart = Schema.decode(PartJson)
const PrincipalJson = Schema.parseJson(Principal)

const toPart = (r: PartRow) =>
  Effect.map(decodePart(r.data), (data) =>
    Part.make({ id: r.id as PartId, sessionId: r.session_id as SessionId, messageId: r.message_id as MessageId, index: r.idx, data })
  )

/**
 * Project-database tables of sessions, messages, parts and queued prompts. Runs against whichever
 * project database the caller is scoped to; SQL and decoding failures are defects (local disk).
 */
export class SessionRepo extends Effect.Service<SessionRepo>()("kiris/SessionRepo", {
  succeed: {
    insertSession: (s: SessionInfo) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql`INSERT INTO sessions (id, parent_id, title, agent, model, status, created_at, updated_at, cost)
            VALUES (${s.id}, ${s.parentId}, ${s.title}, ${s.agent}, ${s.model}, ${s.status}, ${s.createdAt}, ${s.updatedAt},
              ${s.totals.cost})`
      ).pipe(Effect.orDie, Effect.asVoid),

    getSession: (projectId: ProjectId, id: SessionId) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql<SessionRow>`SELECT * FROM sessions WHERE id = ${id}`).pipe(
        Effect.orDie,
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toSession(projectId)))
      ),

    /** Sessions in creation order (children of `parentId` only, when given); archived ones only with `includeArchived`. */
    listSessions: (projectId: ProjectId, parentId: SessionId | undefined, includeArchived = true) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) => {
        const clauses = [
          ...(parentId === undefined ? [] : [sql`parent_id = ${parentId}`]),
          ...(includeArchived ? [] : [sql`archived_at IS NULL`])
        ]
        return sql<SessionRow>`SELECT * FROM sessions WHERE ${sql.and(clauses)} ORDER BY created_at, rowid`
      }).pipe(
        Effect.orDie,
        Effect.map((rows) => rows.map(toSession(projectId)))
      ),

    /** `archived`: true archives (keeping the first time), false unarchives; an unknown cost makes the total unknown. */
    updateSession: (
      id: SessionId,
      fields: { readonly title?: string; readonly status?: SessionStatus; readonly addUsage?: Usage; readonly archived?: boolean }
    ) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) => {
        const u = fields.addUsage ?? Usage.zero
        const archived =
          fields.archived === undefined
            ? sql`archived_at`
            : fields.archived
              ? sql`COALESCE(archived_at, ${Date.now()})`
              : sql`NULL`
        return sql`UPDATE sessions SET
            title = COALESCE(${fields.title ?? null}, title),
            status = COALESCE(${fields.status ?? null}, status),
            archived_at = ${archived},
            input_tokens = input_tokens + ${u.inputTokens},
            output_tokens = output_tokens + ${u.outputTokens},
            reasoning_tokens = reasoning_tokens + ${u.reasoningTokens},
            cached_tokens = cached_tokens + ${u.cachedTokens},
            cost = cost + ${u.cost},
            updated_at = ${Date.now()}
          WHERE id = ${id}`
      }).pipe(Effect.orDie, Effect.asVoid),

    /** Writes a message and parts (their whole current state) in one transaction. */
    writeBatch: (message: Option.Option<Message>, parts: ReadonlyArray<Part>) =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const encoded = yield* Effect.forEach(parts, (p) => Effect.map(encodePart(p.data), (data) => ({ p, data })))
        yield* sql.withTransaction(
          Effect.gen(function* () {
            if (Option.isSome(message)) {
              const m = message.value
              const u = m.usage
              yield* sql`INSERT INTO messages (id, session_id, role, status, model, finish_reason, input_tokens, output_tokens,
                  reasoning_tokens, cached_tokens, cost, error, created_at, completed_at)
                VALUES (${m.id}, ${m.sessionId}, ${m.role}, ${m.status}, ${m.model}, ${m.finishReason}, ${u.inputTokens},
                  ${u.outputTokens}, ${u.reasoningTokens}, ${u.cachedTokens}, ${u.cost}, ${m.error}, ${m.createdAt}, ${m.completedAt})
                ON CONFLICT (id) DO UPDATE SET status = excluded.status, finish_reason = excluded.finish_reason,
                  input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
                  reasoning_tokens = excluded.reasoning_tokens, cached_tokens = excluded.cached_tokens, cost = excluded.cost,
                  error = excluded.error, completed_at = excluded.completed_at`
            }
            for (const { data, p } of encoded) {
              yield* sql`INSERT INTO parts (id, message_id, session_id, idx, data)
                VALUES (${p.id}, ${p.messageId}, ${p.sessionId}, ${p.index}, ${data})
                ON CONFLICT (id) DO UPDATE SET data = excluded.data`
            }
          })
        )
      }).pipe(Effect.orDie),

    /** The session and its sub-agents' sessions, at any depth (the session first). */
    sessionTree: (sessionId: SessionId) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ id: string }>`WITH RECURSIVE tree (id) AS (
            SELECT id FROM sessions WHERE id = ${sessionId}
            UNION ALL
            SELECT s.id FROM sessions s JOIN tree t ON s.parent_id = t.id
          ) SELECT id FROM tree`
      ).pipe(
        Effect.orDie,
        Effect.map((rows) => rows.map((r) => r.id as SessionId))
      ),

    /** Deletes sessions with their messages, parts, queued prompts and permission requests, in one transaction. */
    deleteSessions: (ids: ReadonlyArray<SessionId>) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        ids.length === 0
          ? Effect.void
          : sql.withTransaction(
              Effect.all(
                [
                  sql`DELETE FROM parts WHERE session_id IN ${sql.in(ids)}`,
                  sql`DELETE FROM messages WHERE session_id IN ${sql.in(ids)}`,
                  sql`DELETE FROM queued_prompts WHERE session_id IN ${sql.in(ids)}`,
                  sql`DELETE FROM permission_requests WHERE session_id IN ${sql.in(ids)}`,
                  sql`DELETE FROM sessions WHERE id IN ${sql.in(ids)}`
                ],
                { discard: true }
              )
            )
      ).pipe(Effect.orDie),

    history: (sessionId: SessionId) =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const messages = yield* sql<MessageRow>`SELECT * FROM messages WHERE session_id = ${sessionId} ORDER BY created_at, rowid`
        const partRows = yield* sql<PartRow>`SELECT * FROM parts WHERE session_id = ${sessionId} ORDER BY idx`
        const parts = yield* Effect.forEach(partRows, toPart)
        const byMessage = new Map<string, Array<Part>>()
        for (const p of parts) {
          const list = byMessage.get(p.messageId)
          if (list) list.push(p)
          else byMessage.set(p.messageId, [p])
        }
        return messages.map((r) => MessageWithParts.make({ message: toMessage(r), parts: byMessage.get(r.id) ?? [] }))
      }).pipe(Effect.orDie),

    getMessage: (id: MessageId) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql<MessageRow>`SELECT * FROM messages WHERE id = ${id}`).pipe(
        Effect.orDie,
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toMessage))
      ),

    /**
     * Marks every message left `running` as `interrupted` (and their unfinished tool calls as
     * errors) and every session idle; returns the messages and tool parts as they now are and the
     * sessions whose status changed, for the caller to publish.
     */
    interruptRunning: Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<MessageRow>`UPDATE messages SET status = 'interrupted', completed_at = ${Date.now()}
        WHERE status = 'running' RETURNING *`
      const parts: Array<Part> = []
      for (const { id } of rows) {
        const changed = yield* sql<PartRow>`UPDATE parts SET data = json_set(data, '$.status', 'error', '$.error', 'the hub stopped before the tool call finished')
          WHERE message_id = ${id} AND json_extract(data, '$._tag') = 'tool' AND json_extract(data, '$.status') IN ('pending', 'running')
          RETURNING *`
        parts.push(...(yield* Effect.forEach(changed, toPart)))
      }
      const sessions = yield* sql<{ id: string }>`UPDATE sessions SET status = 'idle' WHERE status <> 'idle' RETURNING id`
      return { messages: rows.map(toMessage), parts, sessions: sessions.map((r) => r.id as SessionId) }
    }).pipe(Effect.orDie),

    insertQueued: (prompt: QueuedPrompt, caller: Principal) =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const callerJson = yield* Schema.encode(PrincipalJson)(caller)
        yield* sql`INSERT INTO queued_prompts (id, session_id, text, author, caller, created_at)
          VALUES (${prompt.id}, ${prompt.sessionId}, ${prompt.text}, ${prompt.author}, ${callerJson}, ${prompt.createdAt})`
      }).pipe(Effect.orDie),

    listQueued: (sessionId: SessionId) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<QueuedRow>`SELECT * FROM queued_prompts WHERE session_id = ${sessionId} ORDER BY seq`
      ).pipe(
        Effect.orDie,
        Effect.map((rows) => rows.map(toQueued))
      ),

    /** Removes and returns the oldest queued prompt of the session, with the caller who sent it. */
    takeQueued: (sessionId: SessionId) =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql<QueuedRow>`DELETE FROM queued_prompts
          WHERE seq = (SELECT min(seq) FROM queued_prompts WHERE session_id = ${sessionId}) RETURNING *`
        const row = rows[0]
        if (row === undefined) return Option.none()
        const caller = yield* Schema.decode(PrincipalJson)(row.caller)
        return Option.some({ prompt: toQueued(row), caller })
      }).pipe(Effect.orDie),

    deleteQueued: (sessionId: SessionId, id: QueuedPromptId) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ id: string }>`DELETE FROM queued_prompts WHERE session_id = ${sessionId} AND id = ${id} RETURNING id`
      ).pipe(
        Effect.orDie,
        Effect.map((rows) => rows.length > 0)
      ),

    clearQueued: (sessionId: SessionId) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ id: string }>`DELETE FROM queued_prompts WHERE session_id = ${sessionId} RETURNING id`
      ).pipe(
        Effect.orDie,
        Effect.map((rows) => rows.map((r) => r.id as QueuedPromptId))
      ),

    sessionsWithQueue: Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql<{ session_id: string }>`SELECT DISTINCT session_id FROM queued_prompts`
    ).pipe(
      Effect.orDie,
      Effect.map((rows) => rows.map((r) => r.session_id as SessionId))
    ),

    /** Every session's totals summed; the cost is unknown (NULL) when any session's is. */
    projectUsage: Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql<UsageRow>`SELECT COALESCE(sum(input_tokens), 0) AS input_tokens, COALESCE(sum(output_tokens), 0) AS output_tokens,
        COALESCE(sum(reasoning_tokens), 0) AS reasoning_tokens, COALESCE(sum(cached_tokens), 0) AS cached_tokens,
        CASE WHEN count(*) = count(cost) THEN COALESCE(sum(cost), 0) ELSE NULL END AS cost FROM sessions`
    ).pipe(
      Effect.orDie,
      Effect.map((rows) => (rows[0] ? toUsage(rows[0]) : Usage.zero))
    )
  }
}) {}
