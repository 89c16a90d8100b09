import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { fileURLToPath } from "node:url"
import type { TaskId } from "../../src/domain/Ids.js"
import { EnqueueTask } from "../../src/domain/Task.js"
import { startWorker, swarmHub, waitAll } from "./swarm-support.js"
import { gitRepo } from "./support.js"

/** A hub and a real `kiris worker` process (without --trust-shell) running codex worktree tasks. */

const fakeAgent = fileURLToPath(new URL("../support/fake-agent-cli.mjs", import.meta.url))

describe("cli worktree tasks through a hub", () => {
  it.scopedLive(
    "a failed task's commits and edits reach the hub in its error; adapterArgs are checked and refused",
    () =>
      Effect.gen(function* () {
        const { admin, hub, key, projectId } = yield* swarmHub
        const env = { KIRIS_CODEX_BIN: fakeAgent, FAKE_AGENT_COMMIT: "1", FAKE_AGENT_EXIT: "4" }
        yield* startWorker({ name: "w1", tcpPort: hub.tcpPort, key, env, args: ["--quiet"] })
        const repo = gitRepo()
        const workdir = { _tag: "worktree", repo: repo.dir }

        const invalid = yield* Effect.flip(
          admin.task.enqueue(
            EnqueueTask.make({ projectId, kind: "cli", payload: { prompt: "p", adapter: "codex", adapterArgs: [42] }, maxAttempts: 1 })
          )
        )
        assert.include(JSON.stringify(invalid), "invalid cli payload")

        const failing = yield* admin.task.enqueue(
          EnqueueTask.make({ projectId, kind: "cli", payload: { prompt: "add a .gitignore", adapter: "codex", workdir }, maxAttempts: 1 })
        )
        const withArgs = yield* admin.task.enqueue(
          EnqueueTask.make({
            projectId,
            kind: "cli",
            payload: { prompt: "p", adapter: "codex", adapterArgs: ["--dangerously-bypass-approvals-and-sandbox"], workdir },
            maxAttempts: 1
          })
        )
        const [failed, refused] = yield* waitAll(admin, [failing.id as TaskId, withArgs.id as TaskId])
        assert.notStrictEqual(failed!.status, "done")
        const error = failed!.error ?? ""
        assert.match(error, /^codex exited with code 4/)
        assert.include(error, `its commits are kept on branch kiris/${failing.id}`)
        assert.include(error, "Subject: [PATCH] fake agent commit")
        assert.include(error, "diff --git a/.gitignore b/.gitignore")
        assert.strictEqual(repo.git("log", "-1", "--format=%s", `kiris/${failing.id}`).trim(), "fake agent commit")

        assert.strictEqual(refused!.status, "failed")
        assert.include(refused!.error ?? "", "--trust-shell")
        assert.strictEqual(repo.git("branch", "--list", `kiris/${withArgs.id}`), "")
      }),
    120_000
  )
})
