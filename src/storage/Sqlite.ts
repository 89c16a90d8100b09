import { SqliteClient } from "@effect/sql-sqlite-node"
import { Migrator, SqlClient } from "@effect/sql"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"

export type Migrations = Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>>

/**
 * Opens one SQLite file with the house settings (WAL, synchronous=NORMAL, foreign keys, a busy
 * timeout) and brings its schema up to date. The client closes with the surrounding scope.
 */
export const openSqlite = (filename: string, migrations: Migrations) =>
  Effect.gen(function* () {
    yield* Effect.sync(() => fs.mkdirSync(path.dirname(filename), { recursive: true }))
    const client = yield* SqliteClient.make({ filename, prepareCacheSize: 500 })
    yield* client.unsafe("PRAGMA synchronous = NORMAL")
    yield* client.unsafe("PRAGMA foreign_keys = ON")
    yield* client.unsafe("PRAGMA busy_timeout = 5000")
    yield* Migrator.make({})({ loader: Migrator.fromRecord(migrations) }).pipe(Effect.provideService(SqlClient.SqlClient, client))
    return client
  }).pipe(Effect.orDie)
