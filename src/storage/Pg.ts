import { Migrator, SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { createRequire } from "node:module"
import type { ProjectId } from "../domain/Ids.js"
import type { Migrations } from "./Sqlite.js"

/**
 * The PostgreSQL backend. Names pass through untransformed, as with SQLite (the repositories write
 * snake_case columns and map rows themselves). The root and queue tables live in the schema the URL's
 * user starts in (`public` by default); every project gets a schema of its own, and its client has
 * that schema alone on its `search_path`, so the project migrations and repositories run unchanged.
 */

/** The `pg` driver's type parsers (the driver ships no type declarations; this is the one value we read from it). */
const pgTypes = createRequire(import.meta.url)("pg").types as {
  getTypeParser: (oid: number, format?: "text" | "binary") => (value: string) => unknown
}

/**
 * bigint (int8) and numeric columns arrive as JavaScript numbers, as on SQLite: every such value
 * the hub stores (ms timestamps, counts, sums, 52-bit fencing tokens) is exact as a double.
 */
const types = {
  getTypeParser: (oid: number, format?: "text" | "binary") =>
    (oid === 20 || oid === 1700) && format !== "binary" ? (value: string) => Number(value) : pgTypes.getTypeParser(oid, format)
}

/** Connection settings shared by every client of the hub. */
const clientConfig = (url: string, maxConnections: number) => ({
  url: Redacted.make(url),
  applicationName: "kiris",
  maxConnections,
  idleTimeout: "30 seconds" as const,
  types
})

/** A `PgClient` (also provided as `SqlClient`) for `url`, closed with the layer. */
export const pgLayer = (url: string): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, unknown> => PgClient.layer(clientConfig(url, 10))

/** A client of the database itself (root and queue tables; the URL's own search path), closed with the scope. */
export const makePgClient = (url: string, maxConnections = 10) => PgClient.make(clientConfig(url, maxConnections))

/**
 * Brings the schema of `url` (its search path) up to date, safely while other hubs do the same: the
 * migrations run on a client of one connection that holds a session advisory lock meanwhile, so a
 * second hub starting at the same moment waits, then finds them applied. `table` keeps the history
 * of each set of migrations apart (the root and queue sets share the database's default schema).
 */
export const migratePg = (url: string, migrations: Migrations, table = "effect_sql_migrations") =>
  Effect.scoped(
    Effect.gen(function* () {
      const sql = yield* PgClient.make(clientConfig(url, 1))
      const key = `kiris.migrate.${table}`
      yield* Effect.acquireUseRelease(
        sql`SELECT pg_advisory_lock(hashtext(${key}))`,
        () => Migrator.make({})({ loader: Migrator.fromRecord(migrations), table }).pipe(Effect.provideService(SqlClient.SqlClient, sql)),
        () => Effect.orDie(sql`SELECT pg_advisory_unlock(hashtext(${key}))`)
      )
    })
  )

/**
 * Opens a client for `url` and brings its schema up to date, like `openSqlite`. With `schema`, every
 * connection of the client starts with `search_path` set to it (sent as a startup option, so pooled
 * connections and transactions all see it); the schema must already exist.
 */
export const openPg = (url: string, migrations: Migrations, schema?: string) =>
  Effect.gen(function* () {
    const bound = schema === undefined ? url : withSearchPath(url, schema)
    yield* migratePg(bound, migrations)
    return yield* PgClient.make(clientConfig(bound, schema === undefined ? 10 : 4))
  }).pipe(Effect.orDie)

/** `url` with `-c search_path=<schema>` added to its `options` parameter. */
export const withSearchPath = (url: string, schema: string): string => {
  const parsed = new URL(url)
  const options = parsed.searchParams.get("options")
  const setting = `-c search_path=${checkedSchemaName(schema)}`
  parsed.searchParams.set("options", options === null || options.trim() === "" ? setting : `${options} ${setting}`)
  return parsed.toString()
}

/**
 * The schema of a project: `project_` and its id, spelled with lowercase letters, digits and `_`
 * only (PostgreSQL folds unquoted names to lowercase, and ids are case-sensitive): `_` is written
 * `__`, `-` is `_0`, an uppercase letter is `_` and the letter in lowercase.
 */
export const projectSchema = (id: ProjectId): string =>
  checkedSchemaName(`project_${[...id].map((c) => (c === "_" ? "__" : c === "-" ? "_0" : /[A-Z]/.test(c) ? `_${c.toLowerCase()}` : c)).join("")}`)

const checkedSchemaName = (schema: string): string => {
  // A name of this shape needs no quoting, neither in SQL nor in a startup option.
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`not a usable PostgreSQL schema name: ${schema}`)
  return schema
}

/** Creates the project's schema if missing; `sql` is a client of the database (any search path). */
export const createProjectSchema = (sql: SqlClient.SqlClient, id: ProjectId) =>
  Effect.suspend(() => sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${projectSchema(id)}`)).pipe(Effect.asVoid)

/** Drops the project's schema and every table in it (a deleted project). */
export const dropProjectSchema = (sql: SqlClient.SqlClient, id: ProjectId) =>
  Effect.suspend(() => sql.unsafe(`DROP SCHEMA IF EXISTS ${projectSchema(id)} CASCADE`)).pipe(Effect.asVoid)

/**
 * Creates the project's schema and opens a migrated client bound to it; the client closes with the
 * surrounding scope (an `RcMap` lookup, as `ProjectDb` does for SQLite files).
 */
export const openProjectPg = (url: string, admin: SqlClient.SqlClient, id: ProjectId, migrations: Migrations) =>
  Effect.zipRight(
    Effect.orDie(createProjectSchema(admin, id)),
    Effect.suspend(() => openPg(url, migrations, projectSchema(id)))
  )
