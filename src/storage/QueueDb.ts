import type { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import * as path from "node:path"
import { ServerConfig } from "../config/ServerConfig.js"
import { queueMigrations } from "./migrations/queue.js"
import { openSqlite } from "./Sqlite.js"

/**
 * The hub-wide task queue database (`<data-dir>/queue.db`). Workers serve every project, so one file
 * and one index give priority-then-FIFO order across projects. Own tag, like RootDb.
 */
export class QueueDb extends Context.Tag("kiris/QueueDb")<QueueDb, SqlClient.SqlClient>() {
  static readonly layer = Layer.scoped(
    QueueDb,
    Effect.gen(function* () {
      const config = yield* ServerConfig
      const sql = yield* openSqlite(path.join(config.dataDir, "queue.db"), queueMigrations)
      // The queue is hot: keep its working set in memory (64 MiB page cache, in-memory temp tables).
      yield* sql.unsafe("PRAGMA cache_size = -65536").pipe(Effect.orDie)
      yield* sql.unsafe("PRAGMA temp_store = MEMORY").pipe(Effect.orDie)
      return sql
    })
  )
}
