import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import * as path from "node:path"
import { ServerConfig } from "../config/ServerConfig.js"
import { rootMigrations } from "./migrations/root.js"
import { openSqlite } from "./Sqlite.js"

/**
 * The hub-wide database (`<data-dir>/root.db`): users, API keys, projects, members. It has its own
 * tag so that project repositories, which need `SqlClient`, can never run against it by accident.
 */
export class RootDb extends Context.Tag("kiris/RootDb")<RootDb, SqlClient.SqlClient>() {
  static readonly layer = Layer.scoped(
    RootDb,
    Effect.flatMap(ServerConfig, (config) => openSqlite(path.join(config.dataDir, "root.db"), rootMigrations))
  )
}

/**
 * Runs a root query outside any project transaction: `withTransaction` keeps its connection in one
 * global tag, so a root query issued inside a project transaction would otherwise run on the
 * project's connection.
 */
export const outsideTransaction = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.mapInputContext(effect, (ctx) => Context.omit(SqlClient.TransactionConnection)(ctx) as typeof ctx)
