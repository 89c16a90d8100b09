import { SqlClient, SqlSchema } from "@effect/sql"
import { Clock, Effect, Option, Schema } from "effect"
import { MessageId, type ProjectId, SessionId } from "../domain/Ids.js"
import { type Message, MessageWithParts, type Part, type SessionInfo, type SessionStatus, Usage } from "../domain/Session.js"
import { decodedOrDie, withSql } from "../storage/Rows.js"
import { queuedPromptQueries } from "./QueuedPrompts.js"
import { sessionAdminQueries } from "./SessionAdmin.js"
import { sessionRunQueries } from "./SessionRuns.js"
import { encodePart, MessageRow, PartRow, SessionRow, toMessage, toPart, toSession } from "./SessionRows.js"

/**
 * Rows in the order they were inserted: SQLite's rowid, PostgreSQL's `seq` (hubs' clocks may differ,
 * and one millisecond often holds two messages, so `created_at` alone cannot order them).
 */
const insertionOrder = (sql: SqlClient.SqlClient) =>
  sql.onDialectOrElse({ pg: () => sql.literal("seq"), orElse: () => sql.literal("created_at, rowid") })

const getSession = SqlSchema.findOne({
  Request: SessionId,
  Result: SessionRow,
  execute: (id) => withSql((sql) => sql`SELECT * FROM sessions WHERE id = ${id}`)
})
const listSessions = SqlSchema.findAll({
  Request: Schema.Struct({ parentId: Schema.UndefinedOr(SessionId), includeArchived: Schema.Boolean }),
  Result: SessionRow,
  execute: (r) =>
    withSql((sql) => {
      const clauses = [
        ...(r.parentId === undefined ? [] : [sql`parent_id = ${r.parentId}`]),
        ...(r.includeArchived ? [] : [sql`archived_at IS NULL`])
      ]
      return sql`SELECT * FROM sessions WHERE ${sql.and(clauses)} ORDER BY ${insertionOrder(sql)}`
    })
})
const messagesOf = SqlSchema.findAll({
  Request: SessionId,
  Result: MessageRow,
  execute: (sessionId) => withSql((sql) => sql`SELECT * FROM messages WHERE session_id = ${sessionId} ORDER BY ${insertionOrder(sql)}`)
})
const partsOf = SqlSchema.findAll({
  Request: SessionId,
  Result: PartRow,
  execute: (sessionId) => withSql((sql) => sql`SELECT * FROM parts WHERE session_id = ${sessionId} ORDER BY idx`)
})
const getMessage = SqlSchema.findOne({
  Request: MessageId,
  Result: MessageRow,
  execute: (id) => withSql((sql) => sql`SELECT * FROM messages WHERE id = ${id}`)
})
const interruptMessages = SqlSchema.findAll({
  Request: Schema.Number,
  Result: MessageRow,
  execute: (now) =>
    withSql(
      (sql) => sql`UPDATE messages SET status = 'interrupted', completed_at = ${now}
        WHERE status = 'running' RETURNING *`
    )
})
const failOpenToolParts = SqlSchema.findAll({
  Request: MessageId,
  Result: PartRow,
  execute: (id) =>
    withSql((sql) =>
      sql.onDialectOrElse({
        pg: () => sql`UPDATE parts
          SET data = (data::jsonb || '{"status":"error","error":"the hub stopped before the tool call finished"}'::jsonb)::text
          WHERE message_id = ${id} AND data::jsonb ->> '_tag' = 'tool' AND data::jsonb ->> 'status' IN ('pending', 'running')
          RETURNING *`,
        orElse: () => sql`UPDATE parts SET data = json_set(data, '$.status', 'error', '$.error', 'the hub stopped before the tool call finished')
          WHERE message_id = ${id} AND json_extract(data, '$._tag') = 'tool' AND json_extract(data, '$.status') IN ('pending', 'running')
          RETURNING *`
      })
    )
})
const interruptSessionMessages = SqlSchema.findAll({
  Request: Schema.Struct({ sessionId: SessionId, now: Schema.Number }),
  Result: MessageRow,
  execute: (r) =>
    withSql(
      (sql) => sql`UPDATE messages SET status = 'interrupted', completed_at = ${r.now}
        WHERE session_id = ${r.sessionId} AND status = 'running' RETURNING *`
    )
})
const idleSession = SqlSchema.findAll({
  Request: SessionId,
  Result: Schema.Struct({ id: SessionId }),
  execute: (id) => withSql((sql) => sql`UPDATE sessions SET status = 'idle' WHERE id = ${id} AND status <> 'idle' RETURNING id`)
})
const idleSessions = SqlSchema.findAll({
  Request: Schema.Void,
  Result: Schema.Struct({ id: SessionId }),
  execute: () => withSql((sql) => sql`UPDATE sessions SET status = 'idle' WHERE status <> 'idle' RETURNING id`)
})

/**
 * Project-database tables of sessions, messages, parts and queued prompts. Runs against whichever
 * project database the caller is scoped to; SQL failures are defects (local disk), and so is a row
 * that does not decode (a `StorageError` naming the query).
 */
export class SessionRepo extends Effect.Service<SessionRepo>()("kiris/SessionRepo", {
  succeed: {
    insertSession: (s: SessionInfo) =>
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) =>
          sql`INSERT INTO sessions (id, parent_id, title, agent, model, status, created_at, updated_at, cost)
            VALUES (${s.id}, ${s.parentId}, ${s.title}, ${s.agent}, ${s.model}, ${s.status}, ${s.createdAt}, ${s.updatedAt},
              ${s.totals.cost})`
      ).pipe(Effect.orDie, Effect.asVoid),

    getSession: (projectId: ProjectId, id: SessionId) =>
      getSession(id).pipe(decodedOrDie("sessions by id"), Effect.map(Option.map(toSession(projectId)))),

    /** Sessions in creation order (children of `parentId` only, when given); archived ones only with `includeArchived`. */
    listSessions: (projectId: ProjectId, parentId: SessionId | undefined, includeArchived = true) =>
      listSessions({ parentId, includeArchived }).pipe(
        decodedOrDie("sessions"),
        Effect.map((rows) => rows.map(toSession(projectId)))
      ),

    /** `archived`: true archives (keeping the first time), false unarchives; an unknown cost makes the total unknown. */
    updateSession: (
      id: SessionId,
      fields: { readonly title?: string; readonly status?: SessionStatus; readonly addUsage?: Usage; readonly archived?: boolean }
    ) =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const now = yield* Clock.currentTimeMillis
        const u = fields.addUsage ?? Usage.zero
        const archived = fields.archived === undefined ? sql`archived_at` : fields.archived ? sql`COALESCE(archived_at, ${now})` : sql`NULL`
        yield* sql`UPDATE sessions SET
            title = COALESCE(${fields.title ?? null}, title),
            status = COALESCE(${fields.status ?? null}, status),
            archived_at = ${archived},
            input_tokens = input_tokens + ${u.inputTokens},
            output_tokens = output_tokens + ${u.outputTokens},
            reasoning_tokens = reasoning_tokens + ${u.reasoningTokens},
            cached_tokens = cached_tokens + ${u.cachedTokens},
            cost = cost + ${u.cost},
            updated_at = ${now}
          WHERE id = ${id}`
      }).pipe(Effect.orDie),

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
        const messages = yield* messagesOf(sessionId).pipe(decodedOrDie("messages of a session"))
        const parts = (yield* partsOf(sessionId).pipe(decodedOrDie("parts of a session"))).map(toPart)
        const byMessage = new Map<string, Array<Part>>()
        for (const p of parts) {
          const list = byMessage.get(p.messageId)
          if (list) list.push(p)
          else byMessage.set(p.messageId, [p])
        }
        return messages.map((r) => MessageWithParts.make({ message: toMessage(r), parts: byMessage.get(r.id) ?? [] }))
      }),

    getMessage: (id: MessageId) => getMessage(id).pipe(decodedOrDie("messages by id"), Effect.map(Option.map(toMessage))),

    /**
     * Marks every message left `running` as `interrupted` (and their unfinished tool calls as
     * errors) and every session idle; returns the messages and tool parts as they now are and the
     * sessions whose status changed, for the caller to publish.
     */
    interruptRunning: Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const rows = yield* interruptMessages(now).pipe(decodedOrDie("interrupted messages"))
      const parts: Array<Part> = []
      for (const { id } of rows) {
        const changed = yield* failOpenToolParts(id).pipe(decodedOrDie("interrupted tool parts"))
        parts.push(...changed.map(toPart))
      }
      const sessions = yield* idleSessions(undefined).pipe(decodedOrDie("sessions set idle"))
      return { messages: rows.map(toMessage), parts, sessions: sessions.map((r) => r.id) }
    }),

    /** `interruptRunning` for one session (whose runner is known to be gone). */
    interruptSession: (sessionId: SessionId) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const rows = yield* interruptSessionMessages({ sessionId, now }).pipe(decodedOrDie("interrupted messages of a session"))
        const parts: Array<Part> = []
        for (const { id } of rows) {
          const changed = yield* failOpenToolParts(id).pipe(decodedOrDie("interrupted tool parts"))
          parts.push(...changed.map(toPart))
        }
        const sessions = yield* idleSession(sessionId).pipe(decodedOrDie("session set idle"))
        return { messages: rows.map(toMessage), parts, sessions: sessions.map((r) => r.id) }
      }),

    ...queuedPromptQueries,
    ...sessionRunQueries,
    ...sessionAdminQueries
  }
}) {}
