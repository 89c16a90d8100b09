import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fakeOpenAI } from "../support/FakeOpenAI.js"
import { runKiris, spawnKiris } from "../support/KirisProcess.js"
import { tempDir } from "./support.js"
import { swarmHub } from "./swarm-support.js"

/** Workers read their settings from the same sources as the hub: flags, environment, ./.kiris/config.json, ~/.kiris/config.json. */

const writeConfig = (dir: string, json: unknown) => {
  fs.mkdirSync(path.join(dir, ".kiris"), { recursive: true })
  fs.writeFileSync(path.join(dir, ".kiris", "config.json"), JSON.stringify(json))
}

describe("worker configuration", () => {
  it.scopedLive(
    "`kiris up` runs a chat task through its local workers with the provider set only in ./.kiris/config.json",
    () =>
      Effect.gen(function* () {
        const fake = yield* fakeOpenAI
        fake.setDefault({ text: "configured by file" })
        const cwd = tempDir("kiris-up-config-")
        const home = tempDir("kiris-home-")
        writeConfig(cwd, { KIRIS_OPENAI_COMPATIBLE_BASE_URL: fake.baseURL, KIRIS_MODEL: "openai-compatible:file-model" })
        const env = { HOME: home }
        const up = yield* spawnKiris(["up", "--port", "0", "--tcp-port", "0"], { cwd, env })
        const port = Number((yield* up.waitForLine(/tcp=127\.0\.0\.1:(\d+)/, "60 seconds"))[1])
        yield* up.waitForLine(/workers 2\/2/, "90 seconds")

        const run = yield* runKiris(["enqueue", "--wait", "--max-attempts", "1", "hello from the queue", "--hub", `127.0.0.1:${port}`], { cwd, env })
        assert.strictEqual(run.code, 0, `stdout:\n${run.stdout}\nstderr:\n${run.stderr}\nup:\n${up.stdout()}`)
        assert.match(run.stdout, /configured by file/)
        assert.strictEqual(fake.requests.length, 1)
        assert.strictEqual(fake.requests[0]!.body.model, "file-model")

        up.child.kill("SIGTERM")
        assert.strictEqual((yield* up.exited("60 seconds")).code, 0)
      }),
    180_000
  )

  it.scopedLive(
    "`kiris worker` prefers the environment over ./.kiris/config.json, and a flag over both",
    () =>
      Effect.gen(function* () {
        const fake = yield* fakeOpenAI
        fake.setDefault({ text: "from the env server" })
        const { hub, admin, key, projectId } = yield* swarmHub
        const cwd = tempDir("kiris-worker-config-")
        const dataDir = tempDir("kiris-worker-flagdir-")
        // the file names a server that does not exist and a data dir the flag overrides
        writeConfig(cwd, {
          KIRIS_OPENAI_COMPATIBLE_BASE_URL: "http://127.0.0.1:9/v1",
          KIRIS_MODEL: "openai-compatible:file-model",
          dataDir: path.join(cwd, "from-file")
        })
        const worker = yield* spawnKiris(
          ["worker", "--hub", `127.0.0.1:${hub.tcpPort}`, "--token", key, "--name", "configured", "--kinds", "chat", "--data-dir", dataDir],
          { cwd, env: { HOME: tempDir("kiris-home-"), KIRIS_OPENAI_COMPATIBLE_BASE_URL: fake.baseURL } }
        )
        yield* worker.waitForLine(/connected as wrk_/, "60 seconds")
        const task = yield* admin.task.enqueue({ projectId, kind: "chat", payload: { prompt: "hi", workdir: { _tag: "isolated" } }, maxAttempts: 1 })
        const [ended] = yield* admin.task.wait({ taskIds: [task.id], timeoutMs: 60_000 })
        assert.strictEqual(ended!.status, "done", ended!.error ?? "")
        assert.strictEqual((ended!.result as { text: string }).text, "from the env server")
        assert.strictEqual(fake.requests[0]!.body.model, "file-model", "KIRIS_MODEL still comes from the file")
        assert.isFalse(fs.existsSync(path.join(cwd, "from-file")), "--data-dir beats dataDir in the file")
      }),
    120_000
  )
})
