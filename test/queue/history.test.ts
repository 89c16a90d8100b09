import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { attemptsTable, taskDetails } from "../../src/cli/TaskCommands.js"
import { Task } from "../../src/domain/Task.js"
import { eventually, startQueue, task, worker } from "./support.js"
import { backendConfig, backends } from "../support/Pg.js"

describe.each(backends)("attempt history on %s", (backend) => {
  it.scopedLive("a retried task that succeeds shows no error, and keeps its failed attempt in its history", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue({ ...(yield* backendConfig(backend)), taskRetryBaseMs: 20 })
      const t = yield* queue.enqueue(task({ maxAttempts: 3 }))
      const [l1] = yield* queue.lease(worker("w1"), ["noop"], 1)
      const failed = yield* queue.fail(worker("w1"), t.id, l1!.fencingToken, "exit 1: boom", true)
      assert.strictEqual(failed.error, "exit 1: boom")
      assert.match(taskDetails(failed), /last error: +exit 1: boom/)
      const [l2] = yield* eventually(queue.lease(worker("w2"), ["noop"], 1), (ls) => ls.length > 0)
      assert.isNotNull(l2!.task.startedAt)
      assert.match(attemptsTable(l2!.task), /running/)
      const done = yield* queue.complete(worker("w2"), t.id, l2!.fencingToken, "fine")
      assert.strictEqual(done.status, "done")
      assert.isNull(done.error, "a later success clears the error")

      const stored = yield* queue.get(t.id)
      assert.isNull(stored.error)
      assert.deepStrictEqual(stored.history, done.history, "the completion's task and the stored row agree")
      assert.strictEqual(stored.history.length, 1, "the successful attempt is the task itself")
      const [first] = stored.history
      assert.deepInclude(first!, { attempt: 1, workerId: worker("w1"), outcome: "failed", error: "exit 1: boom" })
      assert.isNotNull(first!.startedAt)
      assert.isAtLeast(first!.endedAt, first!.startedAt!)
      assert.strictEqual(stored.attempts, 2)
      assert.strictEqual(stored.workerId, worker("w2"))
      assert.isAtMost(first!.endedAt, stored.startedAt!)

      // what RPC and REST answers carry (they encode with the Task schema)
      const encoded = Schema.encodeSync(Task)(stored)
      assert.deepStrictEqual(encoded.history, stored.history)
      assert.strictEqual(encoded.suspect, false)
      assert.strictEqual(encoded.startedAt, stored.startedAt)
      assert.deepStrictEqual(Schema.decodeUnknownSync(Task)(JSON.parse(JSON.stringify(encoded))).history, stored.history)

      const view = taskDetails(stored)
      assert.match(view, /status: +done/)
      assert.notMatch(view, /boom/, "the view shows the current outcome, not an earlier attempt's error")
      const attempts = attemptsTable(stored)
      assert.match(attempts, /1 +\S*w1\S* .* failed +exit 1: boom/)
      assert.match(attempts, /2 +\S*w2\S* .* done +-/)
    })
  )

  it.scopedLive("cancelling a leased task logs its attempt as cancelled; a dead task shows its error", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue({ ...(yield* backendConfig(backend)), taskRetryBaseMs: 10 })
      const a = yield* queue.enqueue(task())
      const [la] = yield* queue.lease(worker("w"), ["noop"], 1)
      assert.strictEqual(la!.task.id, a.id)
      const cancelled = yield* queue.cancel(a.id)
      assert.deepInclude(cancelled.history[0]!, { attempt: 1, workerId: worker("w"), outcome: "cancelled", error: "cancelled" })
      assert.match(taskDetails(cancelled), /error: +cancelled/)

      const b = yield* queue.enqueue(task({ maxAttempts: 1 }))
      const [lb] = yield* queue.lease(worker("w"), ["noop"], 1)
      const dead = yield* queue.fail(worker("w"), b.id, lb!.fencingToken, "out of memory", true)
      assert.strictEqual(dead.status, "dead")
      assert.match(taskDetails(dead), /error: +out of memory/)
      assert.deepStrictEqual(
        dead.history.map((h) => h.outcome),
        ["failed"]
      )
      const retried = yield* queue.retry(b.id)
      assert.strictEqual(retried.history.length, 1, "retry keeps the earlier attempts")
      assert.isNull(retried.error)
    })
  )
})
