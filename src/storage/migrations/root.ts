import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { Migrations } from "../Sqlite.js"

/**
 * Millisecond timestamps outgrow PostgreSQL's 4-byte INTEGER: such columns are BIGINT there, and stay
 * INTEGER (the same 8-byte storage) in SQLite.
 */
const bigint = (sql: SqlClient.SqlClient) => sql.onDialectOrElse({ pg: () => sql.literal("BIGINT"), orElse: () => sql.literal("INTEGER") })

export const rootMigrations: Migrations = {
  "1_init": Effect.flatMap(SqlClient.SqlClient, (sql) => {
    const ms = bigint(sql)
    return Effect.all(
      [
        sql`CREATE TABLE users (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        is_admin INTEGER NOT NULL DEFAULT 0,
        created_at ${ms} NOT NULL
      )`,
        sql`CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        prefix TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        scopes TEXT NOT NULL,
        kind TEXT NOT NULL DEFAULT 'apikey',
        created_at ${ms} NOT NULL,
        last_used_at ${ms},
        revoked_at ${ms}
      )`,
        sql`CREATE TABLE projects (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        workspace TEXT NOT NULL,
        created_at ${ms} NOT NULL
      )`,
        sql`CREATE TABLE members (
        project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('viewer','member','admin','owner')),
        added_at ${ms} NOT NULL,
        PRIMARY KEY (project_id, user_id)
      )`,
        sql`CREATE INDEX members_by_user ON members(user_id)`
      ],
      { discard: true }
    )
  }),
  /**
   * The `execute` grant of a member (running commands on workers is granted, not a default), and the
   * projects a key is limited to (a JSON array of project ids; NULL = every project its owner may use).
   */
  "2_grants": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all([sql`ALTER TABLE members ADD COLUMN can_execute INTEGER NOT NULL DEFAULT 0`, sql`ALTER TABLE api_keys ADD COLUMN projects TEXT`], {
      discard: true
    })
  )
}
