import { assert, describe, it } from "@effect/vitest"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Effect, Exit, Scope } from "effect"
import * as path from "node:path"
import type { TaskId } from "../../src/domain/Ids.js"
import { queueMigrations } from "../../src/storage/migrations/queue.js"
import { openSqlite } from "../../src/storage/Sqlite.js"
import { tempDir } from "../support/Hub.js"
import { project, startQueue } from "../queue/support.js"

describe("queue upgrade to input_required", () => {
  it.scopedLive("a human task queued by an older hub now waits for input; other queued tasks stay queued", () =>
    Effect.gen(function* () {
      const dataDir = tempDir("kiris-queue-")
      const scope = yield* Scope.make()
      const old = yield* openSqlite(path.join(dataDir, "queue.db"), {
        "1_tasks": queueMigrations["1_tasks"]!,
        "2_attempts": queueMigrations["2_attempts"]!
      }).pipe(Scope.extend(scope), Effect.provide(Reactivity.layer))
      yield* old.unsafe(
        `INSERT INTO tasks (id, project_id, kind, payload, status, created_at, updated_at) VALUES
           ('tsk_human', '${project}', 'human', '{"prompt":"approve?"}', 'queued', 1, 1),
           ('tsk_done', '${project}', 'human', '{"prompt":"approved"}', 'done', 1, 1),
           ('tsk_noop', '${project}', 'noop', '{}', 'queued', 1, 1)`
      )
      yield* Scope.close(scope, Exit.void)
      const { queue } = yield* startQueue({ dataDir })
      const statuses = yield* Effect.forEach(["tsk_human", "tsk_done", "tsk_noop"], (id) => queue.get(id as TaskId))
      assert.deepStrictEqual(
        statuses.map((t) => t.status),
        ["input_required", "done", "queued"]
      )
      const stats = yield* queue.stats([project])
      assert.deepStrictEqual([stats.input_required, stats.queued, stats.done], [1, 1, 1])
      const approved = yield* queue.approve("tsk_human" as TaskId, "yes")
      assert.strictEqual(approved.status, "done")
      assert.deepStrictEqual([(yield* queue.stats([project])).input_required, (yield* queue.stats([project])).done], [0, 2])
    })
  )
})
