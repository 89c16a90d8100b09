import * as Reactivity from "@effect/experimental/Reactivity"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Effect, Option, Redacted } from "effect"
import * as path from "node:path"
import { startHub, type TestHub } from "../support/Hub.js"
import { request } from "../support/Http.js"
import { backendConfig, backends, pgUrl } from "../support/Pg.js"
import { pollUntil } from "../support/Until.js"

/** `/readyz` follows the store: 503 with a short reason while a database does not answer, 200 once it does again. */

const readyz = (hub: TestHub) => request(hub, "GET", "/readyz")

const untilStatus = (hub: TestHub, status: number) =>
  pollUntil(
    `/readyz to answer ${status}`,
    Effect.map(readyz(hub), (r) => (r.status === status ? r : undefined)),
    { timeout: "30 seconds", interval: "100 millis" }
  )

/** Runs one statement on a SQLite file of the hub's, from another connection. */
const onFile = (file: string, statement: string) =>
  Effect.sync(() => {
    const db = new Database(file)
    try {
      db.pragma("busy_timeout = 5000")
      db.exec(statement)
    } finally {
      db.close()
    }
  })

describe("/readyz on sqlite", () => {
  it.scopedLive("names the root or the queue database while it cannot be read, and is ready again once it can", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      const ok = yield* readyz(hub)
      assert.deepStrictEqual([ok.status, ok.text], [200, "ready"])

      const root = path.join(hub.dataDir, "root.db")
      yield* onFile(root, "ALTER TABLE users RENAME TO users_away")
      const rootDown = yield* untilStatus(hub, 503)
      assert.match(rootDown.text, /^root database unavailable: .*users/)
      assert.notInclude(rootDown.text, "queue")
      yield* onFile(root, "ALTER TABLE users_away RENAME TO users")
      assert.strictEqual((yield* untilStatus(hub, 200)).text, "ready")

      const queue = path.join(hub.dataDir, "queue.db")
      yield* onFile(queue, "ALTER TABLE tasks RENAME TO tasks_away")
      const queueDown = yield* untilStatus(hub, 503)
      assert.match(queueDown.text, /^queue database unavailable: .*tasks/)
      yield* onFile(queue, "ALTER TABLE tasks_away RENAME TO tasks")
      assert.strictEqual((yield* untilStatus(hub, 200)).text, "ready")
    })
  )
})

describe.skipIf(!backends.includes("pg"))("/readyz on pg", () => {
  it.scopedLive(
    "answers 503 while the database refuses connections and its sessions are gone, and 200 once it accepts them again",
    () =>
      Effect.gen(function* () {
        const overrides = yield* backendConfig("pg")
        const url = Redacted.value(Option.getOrThrow(overrides.databaseUrl!))
        const name = new URL(url).pathname.slice(1)
        const hub = yield* startHub(overrides)
        const ok = yield* readyz(hub)
        assert.deepStrictEqual([ok.status, ok.text], [200, "ready"])

        const admin = yield* PgClient.make({ url: Redacted.make(pgUrl!), maxConnections: 1 }).pipe(Effect.provide(Reactivity.layer))
        const allow = (on: boolean) => admin.unsafe(`ALTER DATABASE ${name} ALLOW_CONNECTIONS ${on}`)
        yield* Effect.addFinalizer(() => Effect.ignore(allow(true)))
        yield* allow(false)
        yield* admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${name}`
        const down = yield* untilStatus(hub, 503)
        assert.match(down.text, /^root database unavailable: .+; queue database unavailable: .+$/)
        assert.isBelow(down.text.length, 600)
        assert.notInclude(down.text, "postgres://")

        yield* allow(true)
        assert.strictEqual((yield* untilStatus(hub, 200)).text, "ready")
      }).pipe(Effect.orDie),
    60_000
  )
})
