import * as Reactivity from "@effect/experimental/Reactivity"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { makeHubClient } from "../../src/client/HubClient.js"
import { projectSchema } from "../../src/storage/Pg.js"
import { projectMigrations } from "../../src/storage/migrations/project.js"
import { queueMigrations } from "../../src/storage/migrations/queue.js"
import { rootMigrations } from "../../src/storage/migrations/root.js"
import type { ProjectId } from "../../src/domain/Ids.js"
import { tempDir } from "../support/Hub.js"
import { runKiris, serveKiris } from "../support/KirisProcess.js"
import { type Backend, backends, freshDatabase } from "../support/Pg.js"

/** `kiris migrate` on both backends: what it applies, what it reports, and a one-line error when the database is away. */

const count = (m: Record<string, unknown>) => Object.keys(m).length
const ROOT = count(rootMigrations)
const QUEUE = count(queueMigrations)
const PROJECT = count(projectMigrations)

/** A store of `backend`: a data dir, and for PostgreSQL a fresh database named by the environment (as a hub would read it). */
const store = (backend: Backend) =>
  Effect.gen(function* () {
    const dataDir = path.join(tempDir("kiris-migrate-"), "data")
    const url = backend === "pg" ? yield* freshDatabase : undefined
    const env: Record<string, string> = url === undefined ? {} : { KIRIS_DATABASE_URL: url }
    const migrate = runKiris(["migrate", "--data-dir", dataDir], { cwd: path.dirname(dataDir), env })
    return { dataDir, url, env, migrate }
  })

describe.each(backends)("kiris migrate on %s", (backend) => {
  it.scopedLive(
    "migrates a new store, then finds it up to date, also while a hub runs; migrates a project's database that lost its tables",
    () =>
      Effect.gen(function* () {
        const { dataDir, env, migrate, url } = yield* store(backend)
        const first = yield* migrate
        assert.strictEqual(first.code, 0, first.stderr)
        assert.deepStrictEqual(first.stdout.trim().split("\n"), [
          `root: applied ${ROOT} (${ROOT} migrations)`,
          `queue: applied ${QUEUE} (${QUEUE} migrations)`
        ])

        // a hub on the migrated store makes a project; migrating while it runs changes nothing
        const hub = yield* serveKiris(dataDir, { env })
        const admin = yield* makeHubClient({ transport: "tcp", host: "127.0.0.1", port: hub.tcpPort }, hub.adminKey)
        const project = yield* admin.project.create({ name: "p" })
        const id = project.id as ProjectId
        const again = yield* migrate
        assert.strictEqual(again.code, 0, again.stderr)
        assert.deepStrictEqual(again.stdout.trim().split("\n"), [
          `root: up to date (${ROOT} migrations)`,
          `queue: up to date (${QUEUE} migrations)`,
          `project ${id}: up to date (${PROJECT} migrations)`
        ])
        const listed = yield* admin.project.list()
        assert.include(
          listed.map((p) => p.id),
          id
        )
        hub.proc.child.kill("SIGTERM")
        yield* hub.proc.exited()

        // the project's database goes away: migrate makes it anew
        if (url === undefined) fs.rmSync(path.join(dataDir, "projects", id, "project.db"))
        else {
          const sql = yield* PgClient.make({ url: Redacted.make(url), maxConnections: 1 }).pipe(Effect.provide(Reactivity.layer))
          yield* sql.unsafe(`DROP SCHEMA ${projectSchema(id)} CASCADE`)
        }
        const rebuilt = yield* migrate
        assert.strictEqual(rebuilt.code, 0, rebuilt.stderr)
        assert.include(rebuilt.stdout, `project ${id}: applied ${PROJECT} (${PROJECT} migrations)`)
      }).pipe(Effect.orDie),
    120_000
  )
})

describe("kiris migrate", () => {
  it.scopedLive("exits non-zero with one line when the database does not answer", () =>
    Effect.gen(function* () {
      const dataDir = path.join(tempDir("kiris-migrate-"), "data")
      const result = yield* runKiris(["migrate", "--data-dir", dataDir, "--database-url", "postgres://kiris:secret@127.0.0.1:1/nowhere"], {
        cwd: path.dirname(dataDir)
      })
      assert.strictEqual(result.code, 1)
      assert.strictEqual(result.stdout, "")
      const lines = result.stderr.trim().split("\n")
      assert.strictEqual(lines.length, 1, result.stderr)
      assert.match(lines[0]!, /^error: cannot migrate the database: .+/)
      assert.notInclude(result.stderr, "secret")
    })
  )
})
