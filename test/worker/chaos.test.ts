import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Effect } from "effect"
import * as path from "node:path"
import type { TaskId } from "../../src/domain/Ids.js"
import { EnqueueTask } from "../../src/domain/Task.js"
import { byId, startWorker, swarmHub, until, waitAll } from "./swarm-support.js"

/** Fencing tokens never reach clients; the test reads the victim's from the queue database itself. */
const tokensOf = (dataDir: string, ids: ReadonlyArray<string>) => {
  const db = new Database(path.join(dataDir, "queue.db"), { readonly: true })
  try {
    const get = db.prepare<[string], { fencing_token: number }>("SELECT fencing_token FROM tasks WHERE id = ?")
    return new Map(ids.map((id) => [id, get.get(id)!.fencing_token]))
  } finally {
    db.close()
  }
}

describe("swarm chaos", () => {
  it.scopedLive(
    "a worker killed mid-task loses its leases; others finish every task exactly once and stale completions are refused",
    () =>
      Effect.gen(function* () {
        const { admin, hub, key, projectId } = yield* swarmHub
        // tasks outlive the 2 s lease: only heartbeats keep a healthy worker's leases
        const args = ["--trust-shell", "--concurrency", "2", "--lease-seconds", "2"]
        const [victim, ...survivors] = yield* Effect.forEach(
          ["victim", "s1", "s2"],
          (name) => startWorker({ name, tcpPort: hub.tcpPort, key, args }),
          {
            concurrency: "unbounded"
          }
        )
        const tasks = yield* admin.task.enqueueBatch({
          tasks: Array.from({ length: 12 }, (_, i) =>
            EnqueueTask.make({ projectId, kind: "shell", payload: { command: `sleep 3; echo ok-${i}` }, maxAttempts: 5 })
          )
        })
        const held = yield* until(
          "the victim to hold leases",
          Effect.map(admin.task.list({ projectId, status: "leased" }), (ts) => {
            const mine = ts.filter((t) => t.workerId === victim!.workerId)
            return mine.length > 0 ? mine : undefined
          })
        )
        const staleTokens = tokensOf(
          hub.dataDir,
          held.map((t) => t.id)
        )
        victim!.proc.child.kill("SIGKILL")
        const ended = yield* waitAll(
          admin,
          tasks.map((t) => t.id as TaskId)
        )
        ended.forEach((t, i) => {
          assert.strictEqual(t.status, "done", `${t.id}: ${t.error}`)
          assert.strictEqual((t.result as { stdout: string }).stdout, `ok-${i}\n`)
          assert.include(
            survivors.map((s) => s.workerId),
            t.workerId
          )
        })
        const final = byId(ended)
        const finalTokens = tokensOf(
          hub.dataDir,
          held.map((t) => t.id)
        )
        // connected only now: the hub closes a connection with no authenticated request after 10 s
        const asWorker = yield* hub.tcpClient(key)
        for (const stale of held) {
          const now = final.get(stale.id)!
          const staleToken = staleTokens.get(stale.id)!
          assert.isAtLeast(now.attempts, 2)
          assert.notStrictEqual(finalTokens.get(stale.id), staleToken)
          const refused = yield* Effect.flip(asWorker.task.complete({ taskId: stale.id, fencingToken: staleToken, result: "late" }))
          assert.strictEqual(refused._tag, "LeaseLost")
          const failRefused = yield* Effect.flip(asWorker.task.fail({ taskId: stale.id, fencingToken: staleToken, message: "late" }))
          assert.strictEqual(failRefused._tag, "LeaseLost")
          const after = yield* admin.task.get({ taskId: stale.id })
          assert.deepStrictEqual(after.result, now.result)
        }
        // the healthy workers kept their leases through heartbeats: their first-wave tasks ran once
        const heldIds = new Set(held.map((t) => t.id))
        assert.isTrue(ended.filter((t) => !heldIds.has(t.id)).every((t) => t.attempts === 1))
      }),
    180_000
  )
})
