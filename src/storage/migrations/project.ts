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
  )
}
