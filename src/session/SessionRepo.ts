import { SqlClient } from "@effect/sql"
import { Effect, Option } from "effect"
import type { MessageId, ProjectId, SessionId } from "../domain/Ids.js"
import { type Message, MessageWithParts, type Part, type SessionInfo, type SessionStatus, Usage } from "../domain/Session.js"
import { queuedPromptQueries } from "./QueuedPrompts.js"
import { sessionAdminQueries } from "./SessionAdmin.js"
import { encodePart, type MessageRow, type PartRow, type SessionRow, toMessage, toPart, toSession } from "./SessionRows.js"

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

    ...queuedPromptQueries,
    ...sessionAdminQueries
  }
}) {}
