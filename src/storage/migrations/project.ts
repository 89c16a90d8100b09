import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { Migrations } from "../Sqlite.js"

/**
 * Schema of every project database. Areas add their tables as further numbered entries; keys must
 * match /^\d+_name$/ or the migrator skips them silently.
 */
/**
 * Column types that differ between the backends; SQLite keeps the exact declarations it always had.
 * `ms`: millisecond timestamps and token counts outgrow PostgreSQL's 4-byte INTEGER. `real`: SQLite's
 * REAL is 8 bytes, PostgreSQL's 4. `serial`: a generated increasing key.
 */
const types = (sql: SqlClient.SqlClient) => ({
  ms: sql.onDialectOrElse({ pg: () => sql.literal("BIGINT"), orElse: () => sql.literal("INTEGER") }),
  real: sql.onDialectOrElse({ pg: () => sql.literal("DOUBLE PRECISION"), orElse: () => sql.literal("REAL") }),
  serial: sql.onDialectOrElse({ pg: () => sql.literal("BIGSERIAL PRIMARY KEY"), orElse: () => sql.literal("INTEGER PRIMARY KEY AUTOINCREMENT") })
})

export const projectMigrations: Migrations = {
  "1_activity": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`CREATE TABLE activity (
      id ${types(sql).serial},
      at ${types(sql).ms} NOT NULL,
      actor TEXT NOT NULL,
      action TEXT NOT NULL,
      detail TEXT NOT NULL DEFAULT '{}'
    )`.pipe(Effect.asVoid)
  ),
  "2_sessions": Effect.flatMap(SqlClient.SqlClient, (sql) => {
    const t = types(sql)
    return Effect.all(
      [
        sql`CREATE TABLE sessions (
          id TEXT PRIMARY KEY,
          parent_id TEXT REFERENCES sessions(id) ON DELETE CASCADE,
          title TEXT NOT NULL,
          agent TEXT NOT NULL,
          model TEXT NOT NULL,
          status TEXT NOT NULL DEFAULT 'idle',
          created_at ${t.ms} NOT NULL,
          updated_at ${t.ms} NOT NULL,
          input_tokens ${t.ms} NOT NULL DEFAULT 0,
          output_tokens ${t.ms} NOT NULL DEFAULT 0,
          reasoning_tokens ${t.ms} NOT NULL DEFAULT 0,
          cached_tokens ${t.ms} NOT NULL DEFAULT 0,
          cost ${t.real} NOT NULL DEFAULT 0
        )`,
        sql`CREATE INDEX sessions_by_parent ON sessions(parent_id)`,
        sql`CREATE TABLE messages (
          id TEXT PRIMARY KEY,
          session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
          role TEXT NOT NULL,
          status TEXT NOT NULL,
          model TEXT,
          finish_reason TEXT,
          input_tokens ${t.ms} NOT NULL DEFAULT 0,
          output_tokens ${t.ms} NOT NULL DEFAULT 0,
          reasoning_tokens ${t.ms} NOT NULL DEFAULT 0,
          cached_tokens ${t.ms} NOT NULL DEFAULT 0,
          cost ${t.real} NOT NULL DEFAULT 0,
          error TEXT,
          created_at ${t.ms} NOT NULL,
          completed_at ${t.ms}
        )`,
        sql`CREATE INDEX messages_by_session ON messages(session_id)`,
        sql`CREATE INDEX messages_running ON messages(status) WHERE status = 'running'`,
        sql`CREATE TABLE parts (
          id TEXT PRIMARY KEY,
          message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
          session_id TEXT NOT NULL,
          idx INTEGER NOT NULL,
          data TEXT NOT NULL
        )`,
        sql`CREATE INDEX parts_by_message ON parts(message_id, idx)`,
        sql`CREATE TABLE queued_prompts (
          seq ${t.serial},
          id TEXT NOT NULL UNIQUE,
          session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
          text TEXT NOT NULL,
          author TEXT NOT NULL,
          caller TEXT NOT NULL,
          created_at ${t.ms} NOT NULL
        )`,
        sql`CREATE INDEX queued_by_session ON queued_prompts(session_id, seq)`
      ],
      { discard: true }
    )
  }),
  "3_permissions": Effect.flatMap(SqlClient.SqlClient, (sql) => {
    const t = types(sql)
    return Effect.all(
      [
        sql`CREATE TABLE permission_requests (
          id TEXT PRIMARY KEY,
          session_id TEXT NOT NULL,
          message_id TEXT NOT NULL,
          tool_call_id TEXT,
          tool TEXT NOT NULL,
          subject TEXT NOT NULL,
          title TEXT NOT NULL,
          input TEXT NOT NULL,
          requested_by TEXT NOT NULL,
          status TEXT NOT NULL,
          reply TEXT,
          message TEXT,
          replied_by TEXT,
          created_at ${t.ms} NOT NULL,
          replied_at ${t.ms}
        )`,
        sql`CREATE INDEX permission_requests_pending ON permission_requests(session_id, created_at) WHERE status = 'pending'`,
        sql`CREATE TABLE permission_rules (
          id TEXT PRIMARY KEY,
          scope TEXT NOT NULL,
          tool TEXT NOT NULL,
          pattern TEXT NOT NULL,
          action TEXT NOT NULL,
          created_by TEXT,
          created_at ${t.ms} NOT NULL,
          UNIQUE (scope, tool, pattern)
        )`
      ],
      { discard: true }
    )
  }),
  /**
   * Costs become nullable (`NULL` = unknown: the model has no price); earlier rows that stored 0
   * for tokens used are unknown, and so are the totals of sessions holding one. Sessions can be
   * archived.
   */
  "4_cost_unknown_archive": Effect.flatMap(SqlClient.SqlClient, (sql) => {
    const t = types(sql)
    return Effect.all(
      [
        sql`ALTER TABLE messages ADD COLUMN cost_usd ${t.real}`,
        sql`UPDATE messages SET cost_usd = cost WHERE cost <> 0 OR (input_tokens = 0 AND output_tokens = 0)`,
        sql`ALTER TABLE messages DROP COLUMN cost`,
        sql`ALTER TABLE messages RENAME COLUMN cost_usd TO cost`,
        sql`ALTER TABLE sessions ADD COLUMN cost_usd ${t.real}`,
        sql`UPDATE sessions SET cost_usd = cost
          WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.session_id = sessions.id AND m.cost IS NULL)`,
        sql`ALTER TABLE sessions DROP COLUMN cost`,
        sql`ALTER TABLE sessions RENAME COLUMN cost_usd TO cost`,
        sql`ALTER TABLE sessions ADD COLUMN archived_at ${t.ms}`
      ],
      { discard: true }
    )
  }),
  /**
   * Versioned workspace files: content-addressed blobs (the bytes live in the project's `blobs`
   * directory), one row per recorded version, snapshots (the latest version of every path at a
   * moment). Versions are paged by path and by session through their indexes.
   */
  "5_files": Effect.flatMap(SqlClient.SqlClient, (sql) => {
    const serial = sql.onDialectOrElse({
      pg: () => sql.literal("BIGSERIAL PRIMARY KEY"),
      orElse: () => sql.literal("INTEGER PRIMARY KEY AUTOINCREMENT")
    })
    return Effect.all(
      [
        sql`CREATE TABLE file_blobs (
          hash TEXT PRIMARY KEY,
          size BIGINT NOT NULL,
          created_at BIGINT NOT NULL
        )`,
        sql`CREATE TABLE file_versions (
          id ${serial},
          path TEXT NOT NULL,
          hash TEXT,
          size BIGINT NOT NULL,
          deleted INTEGER NOT NULL,
          author TEXT NOT NULL,
          author_kind TEXT NOT NULL,
          session_id TEXT,
          message_id TEXT,
          prev_id BIGINT,
          disk_mtime DOUBLE PRECISION,
          created_at BIGINT NOT NULL
        )`,
        sql`CREATE INDEX file_versions_by_path ON file_versions(path, id)`,
        sql`CREATE INDEX file_versions_by_session ON file_versions(session_id, id) WHERE session_id IS NOT NULL`,
        sql`CREATE INDEX file_versions_by_hash ON file_versions(hash)`,
        sql`CREATE TABLE file_snapshots (
          id ${serial},
          label TEXT NOT NULL,
          author TEXT NOT NULL,
          auto INTEGER NOT NULL,
          files INTEGER NOT NULL,
          created_at BIGINT NOT NULL
        )`,
        sql`CREATE TABLE file_snapshot_entries (
          snapshot_id BIGINT NOT NULL REFERENCES file_snapshots(id) ON DELETE CASCADE,
          path TEXT NOT NULL,
          version_id BIGINT NOT NULL,
          PRIMARY KEY (snapshot_id, path)
        )`,
        sql`CREATE INDEX file_snapshot_entries_by_version ON file_snapshot_entries(version_id)`
      ],
      { discard: true }
    )
  }),
  /**
   * The project's event log: every published event by its per-project `seq` (the body as JSON),
   * with its tag and, for streaming deltas, the message they belong to (so finished messages'
   * deltas can be dropped early). `event_log_state` holds `pruned_below`: events under it were
   * pruned, a subscriber resuming from before it gets `Reset`.
   */
  "6_events": Effect.flatMap(SqlClient.SqlClient, (sql) => {
    // SQLite stores an INTEGER PRIMARY KEY as the rowid itself (no second index); seqs are given, never generated.
    const key = sql.onDialectOrElse({ pg: () => sql.literal("BIGINT PRIMARY KEY"), orElse: () => sql.literal("INTEGER PRIMARY KEY") })
    return Effect.all(
      [
        sql`CREATE TABLE events (
          seq ${key},
          at BIGINT NOT NULL,
          kind TEXT NOT NULL,
          message_id TEXT,
          body TEXT NOT NULL
        )`,
        sql`CREATE INDEX events_deltas ON events(at) WHERE kind = 'PartDelta'`,
        sql`CREATE TABLE event_log_state (
          name TEXT PRIMARY KEY,
          value BIGINT NOT NULL
        )`
      ],
      { discard: true }
    )
  }),
  /**
   * Which hub runs a session's turns (`session_runs`: one row while a runner is active, renewed by
   * its hub's heartbeat; a row past `expires_at` belongs to a hub that died). On PostgreSQL, sessions
   * and messages get an increasing `seq` for their order (SQLite orders by its rowid).
   */
  "7_session_runs": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all(
      [
        sql`CREATE TABLE session_runs (
          session_id TEXT PRIMARY KEY,
          hub_id TEXT NOT NULL,
          expires_at BIGINT NOT NULL
        )`,
        sql.onDialectOrElse({
          pg: () =>
            Effect.all([sql`ALTER TABLE sessions ADD COLUMN seq BIGSERIAL`, sql`ALTER TABLE messages ADD COLUMN seq BIGSERIAL`], { discard: true }),
          orElse: () => Effect.void
        })
      ],
      { discard: true }
    )
  )
}
