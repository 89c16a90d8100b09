import * as Reactivity from "@effect/experimental/Reactivity"
import { PgClient } from "@effect/sql-pg"
import { Effect, Option, Redacted, type Scope } from "effect"
import * as crypto from "node:crypto"
import { inject } from "vitest"
import type { ServerConfigShape } from "../../src/config/ServerConfig.js"

/**
 * PostgreSQL for tests. `KIRIS_TEST_DATABASE_URL` names a server's database that tests may create
 * databases next to (`bash scripts/ci/postgres.sh` starts one and prints it). Without it the
 * PostgreSQL half of a backend matrix is skipped locally; under CI its absence fails the run.
 */
export const pgUrl: string | undefined = process.env["KIRIS_TEST_DATABASE_URL"] || undefined
const inCi = process.env["CI"] !== undefined && process.env["CI"] !== "" && process.env["CI"] !== "false"
const missing = "KIRIS_TEST_DATABASE_URL is not set: start a server with `bash scripts/ci/postgres.sh` and export its URL"

export type Backend = "sqlite" | "pg"

/** The backends a storage-facing suite runs on: both when a server is known (or under CI, where a missing one fails), else SQLite. */
export const backends: ReadonlyArray<Backend> = pgUrl !== undefined || inCi ? ["sqlite", "pg"] : ["sqlite"]

const requireUrl = Effect.suspend(() => (pgUrl === undefined ? Effect.dieMessage(missing) : Effect.succeed(pgUrl)))

/** `url` with its database name replaced. */
export const withDatabase = (url: string, database: string): string => {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

/** This run's tag in the names of its databases (`kiris_t_<run>_…`), so the run's end drops them all (PgRun.ts). */
const runTag = (): string => {
  try {
    return inject("kirisPgRun")
  } catch {
    return "solo"
  }
}

/**
 * Databases this process made and emptied again, ready for its next test: making a database copies
 * its template (about 0.3 s of the server's CPU), emptying one is a few dropped schemas.
 */
const emptied: Array<string> = []

const adminClient = (url: string) => PgClient.make({ url: Redacted.make(url), maxConnections: 1 }).pipe(Effect.provide(Reactivity.layer))

/** Ends every other session on `name`, then drops every schema in it and makes `public` again. */
const empty = (url: string, name: string) =>
  Effect.gen(function* () {
    const admin = yield* adminClient(url)
    yield* admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${name} AND pid <> pg_backend_pid()`
    const db = yield* adminClient(withDatabase(url, name))
    const schemas = yield* db<{ readonly nspname: string }>`
      SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema'`
    for (const { nspname } of schemas) yield* db.unsafe(`DROP SCHEMA "${nspname.replace(/"/g, '""')}" CASCADE`)
    yield* db.unsafe("CREATE SCHEMA public")
  }).pipe(Effect.scoped)

/**
 * An empty database on the test server for the scope: each test gets a store of its own, as a team
 * gets its own database. When the scope closes, the database is emptied (its sessions ended, every
 * schema dropped) and kept for this process's next test; one that cannot be emptied is dropped.
 * Whatever the run made is dropped when the run ends.
 */
export const freshDatabase: Effect.Effect<string, never, Scope.Scope> = Effect.gen(function* () {
  const url = yield* requireUrl
  const name = yield* Effect.acquireRelease(
    Effect.gen(function* () {
      const reused = emptied.pop()
      if (reused !== undefined) return reused
      const made = `kiris_t_${runTag()}_${crypto.randomBytes(6).toString("hex")}`
      yield* Effect.scoped(Effect.flatMap(adminClient(url), (admin) => admin.unsafe(`CREATE DATABASE ${made}`)))
      return made
    }),
    (name) =>
      empty(url, name).pipe(
        Effect.andThen(() => emptied.push(name)),
        Effect.catchAllCause(() =>
          Effect.scoped(Effect.flatMap(adminClient(url), (admin) => admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)))
        ),
        Effect.ignore
      )
  )
  return withDatabase(url, name)
}).pipe(Effect.orDie)

/** Config overrides putting a hub (or a service layer) on `backend`: nothing for SQLite, a fresh database for PostgreSQL. */
export const backendConfig = (backend: Backend): Effect.Effect<Partial<ServerConfigShape>, never, Scope.Scope> =>
  backend === "sqlite" ? Effect.succeed({}) : Effect.map(freshDatabase, (url) => ({ databaseUrl: Option.some(Redacted.make(url)) }))
