import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { TaskId } from "../../src/domain/Ids.js"
import { EnqueueTask } from "../../src/domain/Task.js"
import { echoLastUser, fakeOpenAI, lastUserText } from "../support/FakeOpenAI.js"
import { fakeCli, tempDir } from "./support.js"
import { startWorker, swarmHub, waitAll } from "./swarm-support.js"

describe("swarm: a hub and three worker processes", () => {
  it.scopedLive(
    "300 tasks of mixed kinds each finish exactly once with the right result",
    () =>
      Effect.gen(function* () {
        const { admin, hub, key, projectId } = yield* swarmHub
        const fake = yield* fakeOpenAI
        fake.setDefault(echoLastUser)
        const env = { KIRIS_CODEX_BIN: fakeCli, KIRIS_OPENAI_COMPATIBLE_BASE_URL: fake.baseURL, KIRIS_LLM_MAX_RETRIES: "0" }
        const workers = yield* Effect.forEach(
          ["w1", "w2", "w3"],
          (name) => startWorker({ name, tcpPort: hub.tcpPort, key, env, args: ["--trust-shell", "--concurrency", "6", "--quiet"] }),
          { concurrency: "unbounded" }
        )
        const ledger = path.join(tempDir(), "shell-ledger.txt")
        const inputs = Array.from({ length: 300 }, (_, i) => {
          const kind = (["shell", "chat", "cli"] as const)[i % 3]!
          const payload =
            kind === "shell"
              ? { command: `echo shell-${i} >> ${ledger}; echo shell-${i}` }
              : kind === "chat"
                ? { prompt: `chat-${i}`, model: "openai-compatible:fake" }
                : { prompt: `cli-${i}`, adapter: "codex" }
          return EnqueueTask.make({ projectId, kind, payload, maxAttempts: 1 })
        })
        const enqueued = yield* admin.task.enqueueBatch({ tasks: inputs })
        assert.strictEqual(enqueued.length, 300)
        const ended = yield* waitAll(
          admin,
          enqueued.map((t) => t.id as TaskId)
        )
        const workerIds = new Set(workers.map((w) => w.workerId))
        const ranBy = new Map<string, number>()
        ended.forEach((task, i) => {
          assert.strictEqual(task.status, "done", `${task.id} ${task.kind}: ${task.error}`)
          assert.strictEqual(task.attempts, 1)
          assert.isTrue(workerIds.has(task.workerId!))
          ranBy.set(task.workerId!, (ranBy.get(task.workerId!) ?? 0) + 1)
          const result = task.result as { stdout?: string; text?: string }
          if (task.kind === "shell") assert.strictEqual(result.stdout, `shell-${i}\n`)
          if (task.kind === "chat") assert.strictEqual(result.text, `echo: chat-${i}`)
          if (task.kind === "cli") assert.include(result.stdout, `fake-cli: cli-${i}\n`)
        })
        // side effects happened exactly once: one ledger line per shell task, one model call per chat task
        const lines = fs.readFileSync(ledger, "utf8").trim().split("\n").sort()
        assert.deepStrictEqual(lines, Array.from({ length: 100 }, (_, k) => `shell-${k * 3}`).sort())
        const prompts = fake.requests.map((r) => lastUserText(r.body)).sort()
        assert.deepStrictEqual(prompts, Array.from({ length: 100 }, (_, k) => `chat-${k * 3 + 1}`).sort())
        assert.strictEqual(ranBy.size, 3, "every worker ran some tasks")
        const listed = yield* admin.task.workers()
        assert.strictEqual(listed.filter((w) => w.connected).length, 3)
      }),
    240_000
  )
})
