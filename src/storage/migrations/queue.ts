import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import type { Migrations } from "../Sqlite.js"

/**
 * Schema of the hub-wide task queue (`queue.db`). JSON columns (payload, depends_on, progress,
 * result) hold JSON text. `tasks_ready` serves "next leasable tasks of a kind" in priority-then-FIFO
 * order straight from the index; the other partial indexes keep the reaper, the concurrency check and
 * the delayed-task wake-up off full scans. No index contains `status` beyond the partial ones, so a
 * transition touches few B-trees (per-status counts are kept in memory by the writer).
 *
 * `2_attempts`: `started_at` (when the current or last attempt was leased), `attempt_log` (JSON text:
 * every ended attempt, oldest first, appended by the transitions) and `suspect` (0/1: the lease expired
 * on several different workers).
 *
 * `3_input_required`: human tasks no longer wait as `queued` but as `input_required`.
 *
 * `4_traceparent`: the W3C trace context of the span that enqueued the task (NULL unless tracing is
 * on), so that its lease and its run on a worker join the same trace.
 */
/**
 * Declarations PostgreSQL spells differently (SQLite keeps its own exactly): a generated key,
 * 8-byte integers for millisecond timestamps, lease lengths and fencing tokens (up to 2^52), an
 * 8-byte REAL, and no WITHOUT ROWID.
 */
const types = (sql: SqlClient.SqlClient) => ({
  serial: sql.onDialectOrElse({ pg: () => sql.literal("BIGSERIAL PRIMARY KEY"), orElse: () => sql.literal("INTEGER PRIMARY KEY AUTOINCREMENT") }),
  ms: sql.onDialectOrElse({ pg: () => sql.literal("BIGINT"), orElse: () => sql.literal("INTEGER") }),
  real: sql.onDialectOrElse({ pg: () => sql.literal("DOUBLE PRECISION"), orElse: () => sql.literal("REAL") }),
  withoutRowid: sql.onDialectOrElse({ pg: () => sql.literal(""), orElse: () => sql.literal(" WITHOUT ROWID") })
})

export const queueMigrations: Migrations = {
  "1_tasks": Effect.flatMap(SqlClient.SqlClient, (sql) => {
    const t = types(sql)
    return Effect.all(
      [
        sql`CREATE TABLE tasks (
          seq ${t.serial},
          id TEXT NOT NULL UNIQUE,
          project_id TEXT NOT NULL,
          kind TEXT NOT NULL,
          payload TEXT NOT NULL,
          priority ${t.real} NOT NULL DEFAULT 0,
          run_after ${t.ms} NOT NULL DEFAULT 0,
          attempts INTEGER NOT NULL DEFAULT 0,
          max_attempts INTEGER NOT NULL DEFAULT 3,
          idempotency_key TEXT,
          depends_on TEXT,
          dep_policy TEXT,
          concurrency_key TEXT,
          concurrency_limit INTEGER NOT NULL DEFAULT 1,
          status TEXT NOT NULL,
          worker_id TEXT,
          lease_expires_at ${t.ms},
          lease_ms ${t.ms} NOT NULL DEFAULT 0,
          fencing_token ${t.ms} NOT NULL DEFAULT 0,
          progress TEXT,
          result TEXT,
          error TEXT,
          created_at ${t.ms} NOT NULL,
          updated_at ${t.ms} NOT NULL,
          finished_at ${t.ms}
        )`,
        sql`CREATE UNIQUE INDEX tasks_idempotency ON tasks(project_id, idempotency_key) WHERE idempotency_key IS NOT NULL`,
        sql`CREATE INDEX tasks_ready ON tasks(kind, priority DESC, seq) WHERE status = 'queued'`,
        sql`CREATE INDEX tasks_delayed ON tasks(run_after) WHERE status = 'queued' AND run_after > 0`,
        sql`CREATE INDEX tasks_leased ON tasks(lease_expires_at) WHERE status = 'leased'`,
        sql`CREATE INDEX tasks_concurrency ON tasks(project_id, concurrency_key)
            WHERE status = 'leased' AND concurrency_key IS NOT NULL`,
        sql`CREATE INDEX tasks_project ON tasks(project_id, seq)`,
        sql`CREATE TABLE task_deps (
          dep_id TEXT NOT NULL,
          task_id TEXT NOT NULL,
          PRIMARY KEY (dep_id, task_id)
        )${t.withoutRowid}`,
        sql`CREATE INDEX task_deps_task ON task_deps(task_id)`
      ],
      { discard: true }
    )
  }),
  "2_attempts": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.all(
      [
        sql`ALTER TABLE tasks ADD COLUMN started_at ${types(sql).ms}`,
        sql`ALTER TABLE tasks ADD COLUMN attempt_log TEXT`,
        sql`ALTER TABLE tasks ADD COLUMN suspect INTEGER NOT NULL DEFAULT 0`
      ],
      { discard: true }
    )
  ),
  "3_input_required": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.asVoid(sql`UPDATE tasks SET status = 'input_required' WHERE kind = 'human' AND status = 'queued'`)
  ),
  "4_traceparent": Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.asVoid(sql`ALTER TABLE tasks ADD COLUMN traceparent TEXT`))
}
