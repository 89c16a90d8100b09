import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import type { Principal } from "../domain/Auth.js"
import { SessionId } from "../domain/Ids.js"
import { type QueuedPrompt, QueuedPromptId } from "../domain/Session.js"
import { decodedOrDie, withSql } from "../storage/Rows.js"
import { PrincipalJson, QueuedRow, toQueued } from "./SessionRows.js"

const listQueued = SqlSchema.findAll({
  Request: SessionId,
  Result: QueuedRow,
  execute: (sessionId) => withSql((sql) => sql`SELECT * FROM queued_prompts WHERE session_id = ${sessionId} ORDER BY seq`)
})
const takeQueued = SqlSchema.findOne({
  Request: SessionId,
  Result: QueuedRow,
  execute: (sessionId) =>
    withSql(
      (sql) => sql`DELETE FROM queued_prompts
          WHERE seq = (SELECT min(seq) FROM queued_prompts WHERE session_id = ${sessionId}) RETURNING *`
    )
})
const QueuedIdRow = Schema.Struct({ id: QueuedPromptId })
const deleteQueued = SqlSchema.findAll({
  Request: Schema.Struct({ sessionId: SessionId, id: QueuedPromptId }),
  Result: QueuedIdRow,
  execute: (r) => withSql((sql) => sql`DELETE FROM queued_prompts WHERE session_id = ${r.sessionId} AND id = ${r.id} RETURNING id`)
})
const clearQueued = SqlSchema.findAll({
  Request: SessionId,
  Result: QueuedIdRow,
  execute: (sessionId) => withSql((sql) => sql`DELETE FROM queued_prompts WHERE session_id = ${sessionId} RETURNING id`)
})
const sessionsWithQueue = SqlSchema.findAll({
  Request: Schema.Void,
  Result: Schema.Struct({ session_id: SessionId }),
  execute: () => withSql((sql) => sql`SELECT DISTINCT session_id FROM queued_prompts`)
})

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
    listQueued(sessionId).pipe(
      decodedOrDie("queued_prompts of a session"),
      Effect.map((rows) => rows.map(toQueued))
    ),

  /** Removes and returns the oldest queued prompt of the session, with the caller who sent it. */
  takeQueued: (sessionId: SessionId) =>
    takeQueued(sessionId).pipe(
      decodedOrDie("taken queued_prompts row"),
      Effect.map(Option.map((row) => ({ prompt: toQueued(row), caller: row.caller })))
    ),

  deleteQueued: (sessionId: SessionId, id: QueuedPromptId) =>
    deleteQueued({ sessionId, id }).pipe(
      decodedOrDie("deleted queued_prompts row"),
      Effect.map((rows) => rows.length > 0)
    ),

  clearQueued: (sessionId: SessionId) =>
    clearQueued(sessionId).pipe(
      decodedOrDie("cleared queued_prompts rows"),
      Effect.map((rows) => rows.map((r) => r.id))
    ),

  sessionsWithQueue: sessionsWithQueue(undefined).pipe(
    decodedOrDie("sessions with queued_prompts"),
    Effect.map((rows) => rows.map((r) => r.session_id))
  )
}
