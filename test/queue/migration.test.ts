import { assert, describe, it } from "@effect/vitest"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Effect, Exit, Scope } from "effect"
import * as path from "node:path"
import type { TaskId } from "../../src/domain/Ids.js"
import { queueMigrations } from "../../src/storage/migrations/queue.js"
import { openSqlite } from "../../src/storage/Sqlite.js"
import { tempDir } from "../support/Hub.js"
import { startQueue, worker } from "./support.js"

describe("queue schema upgrade", () => {
  it.scopedLive("tasks of a database from before the attempt log read and run as before", () =>
    Effect.gen(function* () {
      const dataDir = tempDir("kiris-queue-")
      const scope = yield* Scope.make()
      const old = yield* openSqlite(path.join(dataDir, "queue.db"), { "1_tasks": queueMigrations["1_tasks"]! }).pipe(
        Scope.extend(scope),
        Effect.provide(Reactivity.layer)
      )
      yield* old.unsafe(
        `INSERT INTO tasks (id, project_id, kind, payload, status, attempts, error, created_at, updated_at)
         VALUES ('tsk_old', 'prj_test', 'noop', '{}', 'queued', 1, 'exit 1', 1, 1)`
      )
      yield* Scope.close(scope, Exit.void)
      const { queue } = yield* startQueue({ dataDir })
      const t = yield* queue.get("tsk_old" as TaskId)
      assert.deepStrictEqual([t.history, t.suspect, t.startedAt, t.error], [[], false, null, "exit 1"])
      const [l] = yield* queue.lease(worker("w"), ["noop"], 1)
      const done = yield* queue.complete(worker("w"), t.id, l!.fencingToken, "ok")
      assert.isNull(done.error)
      assert.strictEqual(done.attempts, 2)
    })
  )
})
