import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { InboxItem } from "../../src/domain/Inbox.js"
import type { Task, TaskStats } from "../../src/domain/Task.js"
import { startHub, tempDir } from "../support/Hub.js"
import { type Finished, runKiris } from "../support/KirisProcess.js"

/** `kiris enqueue --kind human`, `kiris inbox` and `kiris stats` as a user runs them (stdin is not a terminal). */

const ok = (run: Finished) => {
  assert.strictEqual(run.code, 0, `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`)
  return run.stdout
}

describe("kiris inbox", () => {
  it.scopedLive(
    "a human task made with enqueue waits in the inbox, is counted as input required, and is answered from the CLI",
    () =>
      Effect.gen(function* () {
        const hub = yield* startHub()
        const cwd = tempDir("kiris-inbox-cli-")
        const kiris = (...argv: Array<string>) => runKiris([...argv, "--hub", `127.0.0.1:${hub.tcpPort}`, "--token", hub.adminKey], { cwd })

        const task = JSON.parse(
          ok(yield* kiris("enqueue", "--kind", "human", "--title", "Deploy to production?", "--detail", "build 42 passed", "--json"))
        ) as Task
        assert.deepStrictEqual(
          [task.kind, task.status, task.payload],
          ["human", "input_required", { title: "Deploy to production?", detail: "build 42 passed" }]
        )
        const second = ok(yield* kiris("enqueue", "--kind", "human", "Rotate the keys?")).trim()

        const stats = JSON.parse(ok(yield* kiris("stats", "--json"))) as TaskStats
        assert.deepStrictEqual([stats.input_required, stats.queued], [2, 0])
        assert.match(ok(yield* kiris("stats")), /^input required:\s+2$/m)

        const listed = JSON.parse(ok(yield* kiris("inbox", "--json"))) as ReadonlyArray<InboxItem>
        assert.deepStrictEqual(
          listed.map((i) => [i.id, i.kind, i.title]),
          [
            [task.id, "human_task", "Deploy to production?"],
            [second, "human_task", "Rotate the keys?"]
          ]
        )

        assert.strictEqual(ok(yield* kiris("inbox", "answer", task.id, "--approve", "--note", "ship it")).trim(), `${task.id} approved`)
        assert.strictEqual(ok(yield* kiris("inbox", "answer", second, "--reject")).trim(), `${second} rejected`)
        const after = JSON.parse(ok(yield* kiris("stats", "--json"))) as TaskStats
        assert.deepStrictEqual([after.input_required, after.done, after.failed], [0, 1, 1])
        assert.strictEqual(ok(yield* kiris("inbox")).trim(), "nothing waits for your input")

        // clear errors
        const again = yield* kiris("inbox", "answer", task.id, "--approve")
        assert.strictEqual(again.code, 1)
        assert.match(again.stderr, /^error: InvalidInput: task tsk_\S+ is not waiting for input \(it is done\)\n$/)
        const neither = yield* kiris("inbox", "answer", task.id)
        assert.strictEqual(neither.code, 1)
        assert.strictEqual(neither.stderr, "error: say --approve or --reject (one of them)\n")
        const unknown = yield* kiris("inbox", "answer", "perm_nope", "--reject")
        assert.strictEqual(unknown.code, 1)
        assert.match(unknown.stderr, /^error: NotFound: inbox item not found: perm_nope\n$/)
        const untitled = yield* kiris("enqueue", "--kind", "human")
        assert.strictEqual(untitled.code, 1)
        assert.strictEqual(untitled.stderr, "error: a human task needs --title (what is asked)\n")
        const noPrompt = yield* kiris("enqueue", "--kind", "noop")
        assert.strictEqual(noPrompt.code, 1)
        assert.strictEqual(noPrompt.stderr, "error: a noop task needs a prompt\n")
      }),
    240_000
  )
})
