import * as Reactivity from "@effect/experimental/Reactivity"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { ServerConfig } from "../../src/config/ServerConfig.js"
import { leaseSql } from "../../src/queue/sql/Statements.js"
import { QueueDb } from "../../src/storage/QueueDb.js"
import { tempDir } from "../support/Hub.js"

const plan = (text: string, params: ReadonlyArray<unknown>) =>
  Effect.flatMap(QueueDb, (sql) => sql.unsafe<{ detail: string }>(`EXPLAIN QUERY PLAN ${text}`, params)).pipe(
    Effect.map((rows) => rows.map((r) => r.detail))
  )

const QueueDbTest = Layer.suspend(() =>
  QueueDb.layer.pipe(Layer.provide(ServerConfig.layerWith({ dataDir: tempDir("kiris-plan-") })), Layer.provide(Reactivity.layer))
)

describe("queue query plans", () => {
  it.scopedLive("leasing one kind reads tasks_ready in order, with no sort step", () =>
    Effect.gen(function* () {
      const steps = yield* plan(leaseSql(1, false), ["w", 1, 1, "[2]", 1, 1, "noop", 1, 10])
      assert.isTrue(
        steps.some((s) => s.includes("tasks_ready")),
        steps.join("\n")
      )
      assert.isFalse(
        steps.some((s) => s.includes("TEMP B-TREE")),
        steps.join("\n")
      )
    }).pipe(Effect.provide(QueueDbTest))
  )

  it.scopedLive("leasing several kinds merges per-kind index scans and only sorts their few candidates", () =>
    Effect.gen(function* () {
      const steps = yield* plan(leaseSql(3, true), ["w", 1, 1, "[2]", 1, 1, ...["noop", "chat", "agent"].flatMap((k) => [k, 1, "[]", 10]), 10])
      assert.strictEqual(steps.filter((s) => s.includes("tasks_ready")).length, 3, steps.join("\n"))
      assert.isFalse(
        steps.some((s) => /SCAN tasks\b(?! USING)/.test(s)),
        steps.join("\n")
      )
    }).pipe(Effect.provide(QueueDbTest))
  )

  it.scopedLive("listing a project's tasks by status, newest first, needs no sort", () =>
    Effect.gen(function* () {
      const steps = yield* plan("SELECT * FROM tasks WHERE project_id = ? AND status = ? ORDER BY seq DESC LIMIT ?", ["p", "done", 10])
      assert.isFalse(
        steps.some((s) => s.includes("TEMP B-TREE")),
        steps.join("\n")
      )
      const all = yield* plan("SELECT * FROM tasks WHERE project_id = ? ORDER BY seq DESC LIMIT ?", ["p", 10])
      assert.isFalse(
        all.some((s) => s.includes("TEMP B-TREE")),
        all.join("\n")
      )
    }).pipe(Effect.provide(QueueDbTest))
  )

  it.scopedLive("the reaper and the completion batch use indexes", () =>
    Effect.gen(function* () {
      const reap = yield* plan("UPDATE tasks SET status = 'queued' WHERE status = 'leased' AND lease_expires_at <= ?", [1])
      assert.isTrue(
        reap.some((s) => s.includes("tasks_leased")),
        reap.join("\n")
      )
      const complete = yield* plan(
        `UPDATE tasks SET status = 'done' FROM json_each(?) AS j
         WHERE tasks.id = j.value->>'id' AND tasks.fencing_token = j.value->>'t' AND tasks.worker_id = j.value->>'w'
           AND tasks.status = 'leased'`,
        ["[]"]
      )
      assert.isFalse(
        complete.some((s) => /SCAN tasks\b/.test(s)),
        complete.join("\n")
      )
    }).pipe(Effect.provide(QueueDbTest))
  )
})
