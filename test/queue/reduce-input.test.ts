import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { TaskId } from "../../src/domain/Ids.js"
import { tempDir } from "../support/TempDir.js"
import { startWorker, swarmHub, waitAll } from "../worker/swarm-support.js"

/**
 * A reduce run by a real worker sees the map results in item order: its command reads them from
 * `KIRIS_DEPENDENCIES_FILE`, each with its index, item and outcome, however the items finished.
 */
describe("reduce input on a worker", () => {
  it.scopedLive("a shell reducer reads every item's index, item and result in item order from KIRIS_DEPENDENCIES_FILE", () =>
    Effect.gen(function* () {
      const { admin, hub, key, projectId } = yield* swarmHub
      const count = 20
      yield* startWorker({ name: "reducer", tcpPort: hub.tcpPort, key, args: ["--trust-shell", "--concurrency", String(count)] })
      // later items finish first, whatever the machine's load: all run at once, and item i waits
      // (up to 30 s) for item i + 1 to leave its mark before leaving its own
      const marks = tempDir("kiris-reduce-marks-")
      const items = Array.from({ length: count }, (_, i) => ({
        command:
          i === count - 1
            ? `touch ${marks}/${i}; echo item-${i}`
            : `for t in $(seq 3000); do [ -e ${marks}/${i + 1} ] && break; sleep 0.01; done; touch ${marks}/${i}; echo item-${i}`
      }))
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
