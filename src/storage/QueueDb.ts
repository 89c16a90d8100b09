import type { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import * as path from "node:path"
import { ServerConfig } from "../config/ServerConfig.js"
import { queueMigrations } from "./migrations/queue.js"
import { openSqlite } from "./Sqlite.js"

/**
 * The hub-wide task queue database (`<data-dir>/queue.db`). Workers serve every project, so one file
 * and one index give priority-then-FIFO order across projects. Own tag, like RootDb. (`layer` is the
 * SQLite file; on PostgreSQL `DatabaseLive` provides the shared database's client under this tag.)
 */
export class QueueDb extends Context.Tag("kiris/QueueDb")<QueueDb, SqlClient.SqlClient>() {
  static readonly layer = Layer.scoped(
    QueueDb,
    Effect.gen(function* () {
      const config = yield* ServerConfig
      const sql = yield* openSqlite(path.join(config.dataDir, "queue.db"), queueMigrations)
      // The queue's working set (the newest rows, the queued and leased index entries) stays in a
      // 16 MiB page cache; older rows are read back from the OS's cache on a miss. In-memory temp tables.
      yield* sql.unsafe("PRAGMA cache_size = -16384").pipe(Effect.orDie)
      yield* sql.unsafe("PRAGMA temp_store = MEMORY").pipe(Effect.orDie)
      return sql
    })
  )
}
