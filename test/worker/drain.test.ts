import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { TaskId } from "../../src/domain/Ids.js"
import { runKiris } from "../support/KirisProcess.js"
import { tempDir } from "./support.js"
import { startWorker, swarmHub, until } from "./swarm-support.js"

/** `kiris workers drain ID` (`task.drainWorker`): the worker finishes what it runs, leases nothing new, and exits 0. */

describe("draining a worker", () => {
  it.scopedLive(
    "a drained worker finishes its long-running task, leases none of the queued ones, and exits 0",
    () =>
      Effect.gen(function* () {
        const { hub, admin, key, projectId } = yield* swarmHub
        const { proc, workerId } = yield* startWorker({ name: "drained", tcpPort: hub.tcpPort, key, args: ["--trust-shell", "--concurrency", "2"] })
        const gate = path.join(tempDir("kiris-gate-"), "open")
        const long = yield* admin.task.enqueue({
          projectId,
          kind: "shell",
          payload: { command: `while [ ! -e ${gate} ]; do sleep 0.05; done; echo finished` },
          maxAttempts: 1
        })
        yield* until(
          "the long task to run",
          Effect.map(admin.task.get({ taskId: long.id }), (t) => (t.status === "leased" ? t : undefined))
        )

        const kiris = (...argv: Array<string>) =>
          runKiris([...argv, "--hub", `127.0.0.1:${hub.tcpPort}`, "--token", hub.adminKey], { cwd: tempDir("kiris-cli-") })
        const unknown = yield* kiris("workers", "drain", "wrk_unknown")
        assert.strictEqual(unknown.code, 1)
        assert.match(unknown.stderr, /error: .*worker.*wrk_unknown/i)

        const drained = yield* kiris("workers", "drain", workerId)
        assert.strictEqual(drained.code, 0, drained.stderr)
        assert.strictEqual(drained.stdout, `${workerId} draining\n`)
        yield* proc.waitForLine(/draining: finishing 1 running task/)

        // queued while draining: the worker has a free slot but must not take them
        const queued: Array<TaskId> = []
        for (const command of ["echo one", "echo two"]) {
          queued.push((yield* admin.task.enqueue({ projectId, kind: "shell", payload: { command }, maxAttempts: 1 })).id)
        }
        fs.writeFileSync(gate, "")

        assert.strictEqual((yield* proc.exited("60 seconds")).code, 0, proc.stdout())
        assert.match(proc.stdout(), /drained in \S+: no tasks left; exiting/)
        const done = yield* admin.task.get({ taskId: long.id })
        assert.strictEqual(done.status, "done")
        assert.strictEqual((done.result as { stdout: string }).stdout, "finished\n")
        for (const id of queued) assert.strictEqual((yield* admin.task.get({ taskId: id })).status, "queued")
        assert.notMatch(proc.stdout(), /start tsk_\S+ shell[\s\S]*start tsk_/, "only the long task ever started")
      }),
    120_000
  )
})
