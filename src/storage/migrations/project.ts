import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { Migrations } from "../Sqlite.js"

/**
 * Schema of every project database. Areas add their tables as further numbered entries; keys must
 * match /^\d+_name$/ or the migrator skips them silently.
 */
export const projectMigrations: Migrations = {
  "1_activity": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`CREATE TABLE activity (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      at INTEGER NOT NULL,
      actor TEXT NOT NULL,
      action TEXT NOT NULL,
      detail TEXT NOT NULL DEFAULT '{}'
    )`.pipe(Effect.asVoid)
  ),
  "2_sessions": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all(
      [
        sql`CREATE TABLE sessions (
          id TEXT PRIMARY KEY,
          parent_id TEXT REFERENCES sessions(id) ON DELETE CASCADE,
          title TEXT NOT NULL,
          agent TEXT NOT NULL,
          model TEXT NOT NULL,
          status TEXT NOT NULL DEFAULT 'idle',
          created_at INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          input_tokens INTEGER NOT NULL DEFAULT 0,
          output_tokens INTEGER NOT NULL DEFAULT 0,
          reasoning_tokens INTEGER NOT NULL DEFAULT 0,
          cached_tokens INTEGER NOT NULL DEFAULT 0,
          cost REAL NOT NULL DEFAULT 0
        )`,
        sql`CREATE INDEX sessions_by_parent ON sessions(parent_id)`,
        sql`CREATE TABLE messages (
          id TEXT PRIMARY KEY,
          session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
          role TEXT NOT NULL,
          status TEXT NOT NULL,
          model TEXT,
          finish_reason TEXT,
          input_tokens INTEGER NOT NULL DEFAULT 0,
          output_tokens INTEGER NOT NULL DEFAULT 0,
          reasoning_tokens INTEGER NOT NULL DEFAULT 0,
          cached_tokens INTEGER NOT NULL DEFAULT 0,
          cost REAL NOT NULL DEFAULT 0,
          error TEXT,
          created_at INTEGER NOT NULL,
          completed_at INTEGER
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
          seq INTEGER PRIMARY KEY AUTOINCREMENT,
          id TEXT NOT NULL UNIQUE,
          session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
          text TEXT NOT NULL,
          author TEXT NOT NULL,
          caller TEXT NOT NULL,
          created_at INTEGER NOT NULL
        )`,
        sql`CREATE INDEX queued_by_session ON queued_prompts(session_id, seq)`
      ],
      { discard: true }
    )
  ),
  "3_permissions": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all(
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
          created_at INTEGER NOT NULL,
          replied_at INTEGER
        )`,
        sql`CREATE INDEX permission_requests_pending ON permission_requests(session_id, created_at) WHERE status = 'pending'`,
        sql`CREATE TABLE permission_rules (
          id TEXT PRIMARY KEY,
          scope TEXT NOT NULL,
          tool TEXT NOT NULL,
          pattern TEXT NOT NULL,
          action TEXT NOT NULL,
          created_by TEXT,
          created_at INTEGER NOT NULL,
          UNIQUE (scope, tool, pattern)
        )`
      ],
      { discard: true }
    )
  )
}
