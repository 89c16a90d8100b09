import { Command } from "@effect/cli"
import type { SqlClient } from "@effect/sql"
import { Cause, Console, Effect, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { withConfigSources } from "../config/ConfigSources.js"
import { ServerConfig } from "../config/ServerConfig.js"
import type { ProjectId } from "../domain/Ids.js"
import type { Migrations } from "../storage/Sqlite.js"
import { CommandFailed } from "./ClientOptions.js"
import { hubOptions, reportConfigInvalid } from "./Serve.js"

/**
 * `kiris migrate`: brings the configured store up to date (the root, the queue and every project's
 * database or schema) and says what it did, one line per set. Hubs migrate on start as well; this
 * runs the same migrations on purpose, e.g. before a rolling upgrade. On PostgreSQL each set is
 * migrated under the advisory lock hubs take, so running hubs and other `migrate` runs are safe.
 */

const DEFAULT_TABLE = "effect_sql_migrations"

/** The database drivers, the migrations and the hub's storage modules, loaded only when the command runs. */
const loadStorage = Effect.promise(async () => {
  const [{ Migrator, SqlClient }, Reactivity, { SqliteClient }, { QUEUE_MIGRATIONS_TABLE }, { projectDir }, pg, project, queue, root] =
    await Promise.all([
      import("@effect/sql"),
      import("@effect/experimental/Reactivity"),
      import("@effect/sql-sqlite-node"),
      import("../storage/Database.js"),
      import("../storage/ProjectDb.js"),
      import("../storage/Pg.js"),
      import("../storage/migrations/project.js"),
      import("../storage/migrations/queue.js"),
      import("../storage/migrations/root.js")
    ])
  return {
    Migrator,
    SqlClient,
    Reactivity,
    SqliteClient,
    QUEUE_MIGRATIONS_TABLE,
    projectDir,
    pg,
    migrations: { root: root.rootMigrations, queue: queue.queueMigrations, project: project.projectMigrations }
  }
})

type Storage = Effect.Effect.Success<typeof loadStorage>

/** The ids recorded in a migrations table (none while it does not exist). */
const recorded = (sql: SqlClient.SqlClient, table: string) =>
  sql<{ readonly migration_id: number }>`SELECT migration_id FROM ${sql(table)}`.pipe(
    Effect.map((rows) => new Set(rows.map((r) => Number(r.migration_id)))),
    Effect.orElseSucceed(() => new Set<number>())
  )

const line = (label: string, applied: number, migrations: Migrations) => {
  const total = Object.keys(migrations).length
  return `${label}: ${applied === 0 ? "up to date" : `applied ${applied}`} (${total} migration${total === 1 ? "" : "s"})`
}

/** One SQLite file, open for the caller's scope; the busy timeout lets it wait for a running hub's writes. */
const migrateSqlite = (s: Storage, label: string, file: string, migrations: Migrations) =>
  Effect.gen(function* () {
    yield* Effect.sync(() => fs.mkdirSync(path.dirname(file), { recursive: true }))
    const sql = yield* s.SqliteClient.make({ filename: file })
    yield* sql.unsafe("PRAGMA busy_timeout = 5000")
    yield* sql.unsafe("PRAGMA foreign_keys = ON")
    const applied = yield* s.Migrator.make({})({ loader: s.Migrator.fromRecord(migrations) }).pipe(Effect.provideService(s.SqlClient.SqlClient, sql))
    yield* Console.log(line(label, applied.length, migrations))
    return sql
  })

/** One set on PostgreSQL: `url`'s search path holds its tables and `table` its history. */
const migrateSet = (s: Storage, label: string, sql: SqlClient.SqlClient, url: string, migrations: Migrations, table = DEFAULT_TABLE) =>
  Effect.gen(function* () {
    const before = yield* recorded(sql, table)
    yield* s.pg.migratePg(url, migrations, table)
    const after = yield* recorded(sql, table)
    yield* Console.log(line(label, [...after].filter((id) => !before.has(id)).length, migrations))
  })

const projectIds = (root: SqlClient.SqlClient) =>
  Effect.map(root<{ readonly id: ProjectId }>`SELECT id FROM projects ORDER BY id`, (rows) => rows.map((r) => r.id))

const sqliteStore = (s: Storage, dataDir: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const root = yield* migrateSqlite(s, "root", path.join(dataDir, "root.db"), s.migrations.root)
      yield* Effect.scoped(migrateSqlite(s, "queue", path.join(dataDir, "queue.db"), s.migrations.queue))
      for (const id of yield* projectIds(root)) {
        const file = path.join(s.projectDir(dataDir, id), "project.db")
        yield* Effect.scoped(migrateSqlite(s, `project ${id}`, file, s.migrations.project))
      }
    })
  )

const pgStore = (s: Storage, url: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const root = yield* s.pg.makePgClient(url, 1)
      yield* migrateSet(s, "root", root, url, s.migrations.root)
      yield* migrateSet(s, "queue", root, url, s.migrations.queue, s.QUEUE_MIGRATIONS_TABLE)
      for (const id of yield* projectIds(root)) {
        yield* s.pg.createProjectSchema(root, id)
        const bound = s.pg.withSearchPath(url, s.pg.projectSchema(id))
        yield* Effect.scoped(Effect.flatMap(s.pg.makePgClient(bound, 1), (sql) => migrateSet(s, `project ${id}`, sql, bound, s.migrations.project)))
      }
    })
  )

/** The innermost readable message of a failure (a driver's `connect ECONNREFUSED 127.0.0.1:5432`, …). */
const reason = (e: unknown): string => {
  let best = String(e)
  for (let c = e, depth = 0; typeof c === "object" && c !== null && depth < 6; c = (c as { cause?: unknown }).cause, depth++) {
    const message = (c as { message?: unknown }).message
    if (typeof message === "string" && message !== "") best = message
  }
  return best.split("\n")[0]!
}

export const runMigrate = (flags: Record<string, string | undefined>) =>
  Effect.gen(function* () {
    // checked by withConfigSources before this runs
    const config = yield* Effect.orDie(ServerConfig.config)
    const storage = yield* loadStorage
    const run = Option.match(config.databaseUrl, {
      onNone: () => sqliteStore(storage, config.dataDir),
      onSome: (url) => pgStore(storage, Redacted.value(url))
    })
    yield* run.pipe(
      Effect.provide(storage.Reactivity.layer),
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.failCause(cause as Cause.Cause<never>)
          : Console.error(
              `error: cannot migrate ${Option.isSome(config.databaseUrl) ? "the database" : config.dataDir}: ${reason(Cause.squash(cause))}`
            ).pipe(Effect.zipRight(new CommandFailed()))
      )
    )
  }).pipe(withConfigSources(flags, ServerConfig.config), reportConfigInvalid)

const { dataDir, databaseUrl } = hubOptions

export const migrateCommand = Command.make("migrate", { dataDir, databaseUrl }, (o) =>
  runMigrate({ dataDir: Option.getOrUndefined(o.dataDir), databaseUrl: Option.getOrUndefined(o.databaseUrl) })
).pipe(
  Command.withDescription(
    "Bring the store up to date: the root, the queue and every project's database (or PostgreSQL schema); safe while hubs run (they also migrate on start)"
  )
)
