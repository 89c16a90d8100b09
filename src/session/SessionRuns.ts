import { SqlClient, SqlSchema } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { SessionId } from "../domain/Ids.js"
import { decodedOrDie, Int, withSql } from "../storage/Rows.js"

/** A session's runner: the hub running its turns, until `expiresAt` unless that hub renews it. */
export interface SessionRun {
  readonly sessionId: SessionId
  readonly hubId: string
  readonly expiresAt: number
}

const RunRow = Schema.Struct({ session_id: SessionId, hub_id: Schema.String, expires_at: Int })
const toRun = (r: typeof RunRow.Type): SessionRun => ({ sessionId: r.session_id, hubId: r.hub_id, expiresAt: r.expires_at })

const getRun = SqlSchema.findOne({
  Request: SessionId,
  Result: RunRow,
  execute: (sessionId) => withSql((sql) => sql`SELECT * FROM session_runs WHERE session_id = ${sessionId}`)
})
const expiredRuns = SqlSchema.findAll({
  Request: Schema.Number,
  Result: RunRow,
  execute: (now) => withSql((sql) => sql`SELECT * FROM session_runs WHERE expires_at < ${now} ORDER BY session_id`)
})
const sessionsToRecover = SqlSchema.findAll({
  Request: Schema.Void,
  Result: Schema.Struct({ id: SessionId }),
  execute: () =>
    withSql(
      (sql) => sql`SELECT session_id AS id FROM messages WHERE status = 'running'
        UNION SELECT id FROM sessions WHERE status <> 'idle'
        UNION SELECT session_id AS id FROM queued_prompts
        UNION SELECT session_id AS id FROM session_runs`
    )
})

/**
 * Queries of the `session_runs` table: which hub runs a session's turns. Hubs sharing a database
 * write a row when a session's runner starts, renew it while it runs and delete it when it goes idle.
 */
export const sessionRunQueries = {
  getRun: (sessionId: SessionId) => getRun(sessionId).pipe(decodedOrDie("session_runs by session"), Effect.map(Option.map(toRun))),

  /** Records `hubId` as the session's runner (taking the row over from any earlier one). */
  claimRun: (sessionId: SessionId, hubId: string, expiresAt: number) =>
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql`INSERT INTO session_runs (session_id, hub_id, expires_at) VALUES (${sessionId}, ${hubId}, ${expiresAt})
        ON CONFLICT (session_id) DO UPDATE SET hub_id = excluded.hub_id, expires_at = excluded.expires_at`
    ).pipe(Effect.orDie, Effect.asVoid),

  /** Deletes the session's row (whichever hub it names). */
  deleteRun: (sessionId: SessionId) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DELETE FROM session_runs WHERE session_id = ${sessionId}`).pipe(Effect.orDie, Effect.asVoid),

  /** Moves the expiry of every row of `hubId` (its heartbeat; 0 hands them over at once). */
  renewRuns: (hubId: string, expiresAt: number) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) => sql`UPDATE session_runs SET expires_at = ${expiresAt} WHERE hub_id = ${hubId}`).pipe(
      Effect.orDie,
      Effect.asVoid
    ),

  /** Rows their hub stopped renewing before `now`. */
  expiredRuns: (now: number) =>
    expiredRuns(now).pipe(
      decodedOrDie("expired session_runs"),
      Effect.map((rows) => rows.map(toRun))
    ),

  /** Sessions a hub start may have to settle: running messages, a non-idle status, queued prompts or a runner row. */
  sessionsToRecover: sessionsToRecover(undefined).pipe(
    decodedOrDie("sessions to recover"),
    Effect.map((rows) => rows.map((r) => r.id))
  )
}
