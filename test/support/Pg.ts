import * as Reactivity from "@effect/experimental/Reactivity"
import { PgClient } from "@effect/sql-pg"
import { Effect, Option, Redacted, type Scope } from "effect"
import * as crypto from "node:crypto"
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

/**
 * A new, empty database on the test server, dropped (connections and all) when the scope closes:
 * each test gets a store of its own, as a team gets its own database.
 */
export const freshDatabase: Effect.Effect<string, never, Scope.Scope> = Effect.gen(function* () {
  const url = yield* requireUrl
  const name = `kiris_t_${crypto.randomBytes(6).toString("hex")}`
  const admin = yield* PgClient.make({ url: Redacted.make(url), maxConnections: 1 }).pipe(Effect.provide(Reactivity.layer))
  yield* admin.unsafe(`CREATE DATABASE ${name}`)
  yield* Effect.addFinalizer(() => Effect.ignore(admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)))
  return withDatabase(url, name)
}).pipe(Effect.orDie)

/** Config overrides putting a hub (or a service layer) on `backend`: nothing for SQLite, a fresh database for PostgreSQL. */
export const backendConfig = (backend: Backend): Effect.Effect<Partial<ServerConfigShape>, never, Scope.Scope> =>
  backend === "sqlite" ? Effect.succeed({}) : Effect.map(freshDatabase, (url) => ({ databaseUrl: Option.some(Redacted.make(url)) }))
