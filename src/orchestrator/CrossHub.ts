import type { SqlClient } from "@effect/sql"
import { Duration, Effect, Option, Schema } from "effect"
import { ProjectId, SessionId } from "../domain/Ids.js"
import { projectSchema } from "../storage/Pg.js"

/**
 * What hubs sharing one PostgreSQL database agree on about sessions: a session's decisions run
 * under its transaction-scoped advisory lock (besides the hub's own lock), taken on a connection kept for that,
 * the hub running a session's turns holds its `session_runs` row and renews it, and the hubs
 * signal each other on the `kiris_sessions` channel to stop a turn that runs elsewhere.
 */

/** How long a runner row holds without renewal: a hub that stopped renewing it this long is gone. */
export const RUN_TTL = Duration.seconds(20)
/** How often a hub renews the rows of the sessions it runs. */
export const HEARTBEAT_EVERY = Duration.seconds(5)
/** How often a hub looks for rows whose hub is gone. */
export const SWEEP_EVERY = Duration.seconds(3)

/** The most sessions a hub locks (or waits to lock) at once; more wait for a connection. */
export const LOCK_CONNECTIONS = 16

/** Takes the session's advisory lock until the current transaction ends (waiting for the hub holding it). */
export const lockSession = (sql: SqlClient.SqlClient, projectId: ProjectId, sessionId: SessionId) =>
  sql`SELECT pg_advisory_xact_lock(hashtext(${projectId}), hashtext(${sessionId}))`

/**
 * A request to the hub running a session's turns: `cancel` ends the turn (the hub then goes on
 * with the session's queue), `stop` ends it and releases the session (its queue was dropped).
 */
export const SessionSignal = Schema.Struct({
  op: Schema.Literal("cancel", "stop"),
  hubId: Schema.String,
  projectId: ProjectId,
  sessionId: SessionId
})
export type SessionSignal = typeof SessionSignal.Type

const SignalJson = Schema.parseJson(SessionSignal)
export const encodeSignal = (signal: SessionSignal): string => JSON.stringify(signal)
export const decodeSignal = (payload: string): Option.Option<SessionSignal> => Schema.decodeUnknownOption(SignalJson)(payload)

const BATCH = 100
const TableRow = Schema.Struct({ schema: Schema.String })

/**
 * The projects (of `projects`) whose `session_runs` hold a row that expired before `now`, read
 * through the database's own client (`root`) so that no project's database is opened for it: one
 * catalog query, then one query per hundred project schemas.
 */
export const projectsWithExpiredRuns = (root: SqlClient.SqlClient, projects: ReadonlyArray<ProjectId>, now: number) =>
  Effect.gen(function* () {
    const rows = yield* root`SELECT n.nspname AS schema FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relname = 'session_runs' AND c.relkind = 'r'`
    const withTable = new Set(Schema.decodeUnknownSync(Schema.Array(TableRow))(rows).map((r) => r.schema))
    const bySchema = new Map<string, ProjectId>()
    for (const id of projects) {
      const schema = projectSchema(id)
      if (withTable.has(schema)) bySchema.set(schema, id)
    }
    const schemas = [...bySchema.keys()]
    const found: Array<ProjectId> = []
    const cutoff = Math.floor(now)
    for (let i = 0; i < schemas.length; i += BATCH) {
      // schema names are [a-z0-9_] only (projectSchema checks), and `cutoff` an integer: safe to inline
      const query = schemas
        .slice(i, i + BATCH)
        .map((s) => `(SELECT '${s}' AS schema FROM ${s}.session_runs WHERE expires_at < ${cutoff} LIMIT 1)`)
        .join(" UNION ALL ")
      const hits = Schema.decodeUnknownSync(Schema.Array(TableRow))(yield* root.unsafe(query))
      for (const hit of hits) {
        const id = bySchema.get(hit.schema)
        if (id !== undefined) found.push(id)
      }
    }
    return found
  })
