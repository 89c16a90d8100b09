import { SqlClient } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import type { Principal } from "../domain/Auth.js"
import type { SessionId } from "../domain/Ids.js"
import type { QueuedPrompt, QueuedPromptId } from "../domain/Session.js"
import { PrincipalJson, type QueuedRow, toQueued } from "./SessionRows.js"

/** Queries of the `queued_prompts` table: prompts waiting for a session's running turn to end. */
export const queuedPromptQueries = {
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
}
