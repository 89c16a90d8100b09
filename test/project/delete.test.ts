import * as Reactivity from "@effect/experimental/Reactivity"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Effect, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { ServerConfigShape } from "../../src/config/ServerConfig.js"
import type { ProjectId } from "../../src/domain/Ids.js"
import { projectSchema } from "../../src/storage/Pg.js"
import { startHubWithIdleModel, type TestHub } from "../support/Hub.js"
import { type Backend, backendConfig, backends } from "../support/Pg.js"

/**
 * Deleting a project deletes its data from the store: its SQLite file, or on PostgreSQL its schema
 * (every table in it), and its blobs. Another project, and one created afterwards, keep or start
 * with their own data.
 */

const TABLES = ["sessions", "file_versions", "file_blobs", "activity"] as const
type Counts = Record<(typeof TABLES)[number], number>

/** Row counts of a project's tables as the store holds them, or None when the project has no store any more. */
const storedCounts = (backend: Backend, config: Partial<ServerConfigShape>, hub: TestHub, id: ProjectId) =>
  backend === "sqlite"
    ? Effect.sync((): Option.Option<Counts> => {
        const file = path.join(hub.dataDir, "projects", id, "project.db")
        if (!fs.existsSync(file)) return Option.none()
        const db = new Database(file, { readonly: true, fileMustExist: true })
        try {
          const counts = Object.fromEntries(TABLES.map((t) => [t, (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n])) as Counts
          return Option.some(counts)
        } finally {
          db.close()
        }
      })
    : Effect.scoped(
        Effect.gen(function* () {
          const url = Option.getOrThrow(config.databaseUrl ?? Option.none())
          const sql = yield* PgClient.make({ url, maxConnections: 1 }).pipe(Effect.provide(Reactivity.layer))
          const schema = projectSchema(id)
          const found = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM information_schema.schemata WHERE schema_name = ${schema}`
          if (found[0]?.n !== 1) return Option.none<Counts>()
          const counts: Record<string, number> = {}
          for (const t of TABLES) {
            const rows = yield* sql.unsafe<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.${t}`)
            counts[t] = rows[0]?.n ?? -1
          }
          return Option.some(counts as Counts)
        })
      ).pipe(Effect.orDie)

describe.each(backends)("deleting a project on %s", (backend) => {
  it.scopedLive("removes its data from the store; another project and a new one are unaffected", () =>
    Effect.gen(function* () {
      const config = yield* backendConfig(backend)
      const hub = yield* startHubWithIdleModel(config)
      const admin = yield* hub.tcpClient()
      const doomed = yield* admin.project.create({ name: "doomed", description: "" })
      const kept = yield* admin.project.create({ name: "kept", description: "" })
      for (const p of [doomed, kept]) {
        yield* admin.file.write({ projectId: p.id, path: "notes.txt", content: `notes of ${p.name}\n` })
        yield* admin.session.create({ projectId: p.id })
      }
      const filled: Counts = { sessions: 1, file_versions: 1, file_blobs: 1, activity: 1 }
      assert.deepStrictEqual(yield* storedCounts(backend, config, hub, doomed.id), Option.some(filled))
      assert.deepStrictEqual(yield* storedCounts(backend, config, hub, kept.id), Option.some(filled))

      yield* admin.project.delete({ projectId: doomed.id, confirm: "doomed" })

      assert.deepStrictEqual(yield* storedCounts(backend, config, hub, doomed.id), Option.none(), "the deleted project's store is gone")
      assert.isFalse(fs.existsSync(path.join(hub.dataDir, "projects", doomed.id)), "its blobs and managed workspace are gone")
      const gone = yield* Effect.flip(admin.file.read({ projectId: doomed.id, path: "notes.txt" }))
      assert.strictEqual(gone._tag, "NotFound")

      assert.deepStrictEqual(yield* storedCounts(backend, config, hub, kept.id), Option.some(filled))
      const read = yield* admin.file.read({ projectId: kept.id, path: "notes.txt" })
      assert.strictEqual(read.content, "notes of kept\n")

      const fresh = yield* admin.project.create({ name: "fresh", description: "" })
      assert.notStrictEqual(fresh.id, doomed.id)
      assert.deepStrictEqual(
        yield* storedCounts(backend, config, hub, fresh.id),
        Option.some({ sessions: 0, file_versions: 0, file_blobs: 0, activity: 1 })
      )
      assert.deepStrictEqual(
        (yield* admin.project.list()).map((p) => p.name),
        ["kept", "fresh"]
      )
    })
  )
})
