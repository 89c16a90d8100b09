import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { MapResult } from "../../src/domain/rpc/TaskRpcs.js"
import type { Task } from "../../src/domain/Task.js"
import { startHub, tempDir } from "../support/Hub.js"
import { runKiris } from "../support/KirisProcess.js"

/** The queue options of `kiris enqueue` and `kiris map`, and their help. */

describe("enqueue and map flags", () => {
  it.scopedLive(
    "enqueue --concurrency-key/--concurrency-limit, and map --policy/--reduce-kind/--priority/--max-attempts, reach the queue",
    () =>
      Effect.gen(function* () {
        const hub = yield* startHub()
        const cwd = tempDir("kiris-flags-")
        const kiris = (...argv: Array<string>) => runKiris([...argv, "--hub", `127.0.0.1:${hub.tcpPort}`, "--token", hub.adminKey], { cwd })

        const keyed = yield* kiris("enqueue", "--kind", "noop", "--json", "--concurrency-key", "repo-a", "--concurrency-limit", "2", "x")
        assert.strictEqual(keyed.code, 0, keyed.stderr)
        const task = JSON.parse(keyed.stdout) as Task
        assert.deepStrictEqual([task.concurrencyKey, task.concurrencyLimit], ["repo-a", 2])

        const onlyKey = JSON.parse((yield* kiris("enqueue", "--kind", "noop", "--json", "--concurrency-key", "repo-b", "y")).stdout) as Task
        assert.deepStrictEqual([onlyKey.concurrencyKey, onlyKey.concurrencyLimit], ["repo-b", 1])

        const noKey = yield* kiris("enqueue", "--kind", "noop", "--concurrency-limit", "2", "z")
        assert.strictEqual(noKey.code, 1)
        assert.strictEqual(noKey.stderr, "error: --concurrency-limit needs --concurrency-key\n")
        const zero = yield* kiris("enqueue", "--kind", "noop", "--concurrency-key", "k", "--concurrency-limit", "0", "z")
        assert.strictEqual(zero.code, 1)
        assert.match(zero.stderr, /--concurrency-limit must be at least 1/)

        const input = path.join(cwd, "items.jsonl")
        fs.writeFileSync(input, '"a"\n"b"\n"c"\n')
        for (const policy of ["fail-fast", "partial", "quorum:2"]) {
          const run = yield* kiris(
            "map",
            "--input",
            input,
            "--kind",
            "noop",
            "--template",
            "item {item}",
            "--reduce",
            "sum",
            "--reduce-kind",
            "noop",
            "--policy",
            policy,
            "--priority",
            "5",
            "--max-attempts",
            "2",
            "--json"
          )
          assert.strictEqual(run.code, 0, run.stderr)
          const mapped = JSON.parse(run.stdout) as MapResult
          assert.strictEqual(mapped.mapTasks.length, 3)
          assert.deepStrictEqual(
            mapped.mapTasks.map((t) => [t.priority, t.maxAttempts]),
            [
              [5, 2],
              [5, 2],
              [5, 2]
            ]
          )
          assert.strictEqual(mapped.reduceTask?.kind, "noop")
          assert.strictEqual(mapped.reduceTask?.dependsOn.length, 3)
        }
        const bad = yield* kiris("map", "--input", input, "--kind", "noop", "--template", "{item}", "--policy", "most")
        assert.strictEqual(bad.code, 1)
        assert.match(bad.stderr, /--policy most: use fail-fast, partial or quorum:K/)
      }),
    60_000
  )

  it.live(
    "--help describes the new options and `kiris workers drain`",
    () =>
      Effect.gen(function* () {
        const cwd = tempDir("kiris-help-")
        const enqueue = (yield* runKiris(["enqueue", "--help"], { cwd })).stdout
        assert.include(enqueue, "--concurrency-key")
        assert.include(enqueue, "--concurrency-limit")
        assert.include(enqueue, "how many tasks with that key may run at once")
        const map = (yield* runKiris(["map", "--help"], { cwd })).stdout
        for (const text of ["fail-fast", "partial", "quorum:K", "--reduce-kind", "--priority", "--max-attempts"]) assert.include(map, text)
        const drain = yield* runKiris(["workers", "drain", "--help"], { cwd })
        assert.strictEqual(drain.code, 0, drain.stderr)
        assert.include(drain.stdout, "finishes its running tasks")
        assert.include(drain.stdout, "server admins only")
      }),
    60_000
  )
})
