import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { TaskId } from "../../src/domain/Ids.js"
import { startWorker, swarmHub, waitAll } from "../worker/swarm-support.js"

/**
 * A reduce run by a real worker sees the map results in item order: its command reads them from
 * `KIRIS_DEPENDENCIES_FILE`, each with its index, item and outcome, however the items finished.
 */
describe("reduce input on a worker", () => {
  it.scopedLive("a shell reducer reads every item's index, item and result in item order from KIRIS_DEPENDENCIES_FILE", () =>
    Effect.gen(function* () {
      const { admin, hub, key, projectId } = yield* swarmHub
      yield* startWorker({ name: "reducer", tcpPort: hub.tcpPort, key, args: ["--trust-shell", "--concurrency", "8"] })
      // later items finish first: item i sleeps (20 - i) * 10 ms
      const items = Array.from({ length: 20 }, (_, i) => ({ command: `sleep 0.${String(20 - i).padStart(2, "0")}; echo item-${i}` }))
      const mapped = yield* admin.task.map({
        projectId,
        kind: "shell",
        items,
        reduce: { command: 'cat "$KIRIS_DEPENDENCIES_FILE"' },
        reduceKind: "shell"
      })
      const [reduce] = yield* waitAll(admin, [mapped.reduceTask!.id as TaskId])
      assert.strictEqual(reduce!.status, "done", reduce!.error ?? "")
      const seen = JSON.parse((reduce!.result as { stdout: string }).stdout) as ReadonlyArray<{
        index: number
        item: { command: string }
        status: string
        result: { stdout: string }
      }>
      assert.deepStrictEqual(
        seen.map((d) => [d.index, d.item.command, d.status, d.result.stdout]),
        items.map((item, i) => [i, item.command, "done", `item-${i}\n`])
      )
      const finished = yield* waitAll(
        admin,
        mapped.mapTasks.map((t) => t.id as TaskId)
      )
      const order = [...finished].sort((a, b) => a.finishedAt! - b.finishedAt!).map((t) => mapped.mapTasks.findIndex((m) => m.id === t.id))
      assert.notDeepEqual(
        order,
        [...order].sort((a, b) => a - b),
        "the items did not finish in item order"
      )
    })
  )
})
