import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Schema } from "effect"
import { SessionId } from "../domain/Ids.js"
import { decodedOrDie } from "../storage/Rows.js"
import { toUsage, UsageRow } from "./SessionRows.js"

const sessionTree = SqlSchema.findAll({
  Request: SessionId,
  Result: Schema.Struct({ id: SessionId }),
  execute: (sessionId) =>
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) =>
        sql`WITH RECURSIVE tree (id) AS (
            SELECT id FROM sessions WHERE id = ${sessionId}
            UNION ALL
            SELECT s.id FROM sessions s JOIN tree t ON s.parent_id = t.id
          ) SELECT id FROM tree`
    )
})
const projectUsage = SqlSchema.single({
  Request: Schema.Void,
  Result: UsageRow,
  execute: () =>
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) =>
        sql`SELECT COALESCE(sum(input_tokens), 0) AS input_tokens, COALESCE(sum(output_tokens), 0) AS output_tokens,
        COALESCE(sum(reasoning_tokens), 0) AS reasoning_tokens, COALESCE(sum(cached_tokens), 0) AS cached_tokens,
        CASE WHEN count(*) = count(cost) THEN COALESCE(sum(cost), 0) ELSE NULL END AS cost FROM sessions`
    )
})

/** Whole-tree and whole-project queries over sessions: a session's sub-agent tree, deleting sessions, project totals. */
export const sessionAdminQueries = {
  /** The session and its sub-agents' sessions, at any depth (the session first). */
  sessionTree: (sessionId: SessionId) =>
    sessionTree(sessionId).pipe(
      decodedOrDie("session tree"),
      Effect.map((rows) => rows.map((r) => r.id))
    ),

  /** Deletes sessions with their messages, parts, queued prompts, permission requests and runner rows, in one transaction. */
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
                sql`DELETE FROM session_runs WHERE session_id IN ${sql.in(ids)}`,
                sql`DELETE FROM sessions WHERE id IN ${sql.in(ids)}`
              ],
              { discard: true }
            )
          )
    ).pipe(Effect.orDie),

  /** Every session's totals summed; the cost is unknown (NULL) when any session's is. */
  projectUsage: projectUsage(undefined).pipe(decodedOrDie("project usage totals"), Effect.map(toUsage))
}
