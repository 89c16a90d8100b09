import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { TaskId } from "../../src/domain/Ids.js"
import { startHub } from "../support/Hub.js"
import { runKiris } from "../support/KirisProcess.js"
import { fakeCli, isAlive, tempDir } from "./support.js"
import { newProject, startWorker, swarmHub, until, waitAll, workerKey } from "./swarm-support.js"

describe("swarm worker lifecycle", () => {
  it.scopedLive(
    "cancelling a running task kills its process on the worker",
    () =>
      Effect.gen(function* () {
        const { admin, hub, key, projectId } = yield* swarmHub
        const worker = yield* startWorker({
          name: "w",
          tcpPort: hub.tcpPort,
          key,
          env: { KIRIS_CLAUDE_BIN: fakeCli, FAKE_CLI_SLEEP_MS: "120000" }
        })
        const dir = tempDir()
        const task = yield* admin.task.enqueue({
          projectId,
          kind: "cli",
          payload: { prompt: "work forever", adapter: "claude", workdir: { _tag: "shared", path: dir } }
        })
        const pidFile = path.join(dir, "fake-cli.pid")
        const pid = yield* until(
          "the CLI to start",
          Effect.sync(() => (fs.existsSync(pidFile) ? Number(fs.readFileSync(pidFile, "utf8")) : undefined))
        )
        assert.isTrue(isAlive(pid))
        const cancelled = yield* admin.task.cancel({ taskId: task.id })
        assert.strictEqual(cancelled.status, "cancelled")
        yield* until(
          "the CLI process to be killed",
          Effect.sync(() => (isAlive(pid) ? undefined : true))
        )
        yield* worker.proc.waitForLine(new RegExp(`cancelled ${task.id}`))
        const after = yield* admin.task.get({ taskId: task.id })
        assert.strictEqual(after.status, "cancelled")
        assert.isFalse(fs.existsSync(path.join(dir, "fake-cli-output.txt")))
      }),
    120_000
  )

  it.scopedLive(
    "a worker reconnects to a restarted hub with the same id, finishes its running task and takes new work",
    () =>
      Effect.gen(function* () {
        const dataDir = tempDir()
        const first = yield* Scope.make()
        const hub1 = yield* startHub({ dataDir }).pipe(Scope.extend(first))
        const admin1 = yield* hub1.tcpClient().pipe(Scope.extend(first))
        const key = yield* workerKey(admin1)
        const projectId = yield* newProject(admin1)
        const worker = yield* startWorker({ name: "w", tcpPort: hub1.tcpPort, key, args: ["--trust-shell"] })
        const marker = path.join(tempDir(), "go")
        const running = yield* admin1.task.enqueue({
          projectId,
          kind: "shell",
          payload: { command: `while [ ! -f ${marker} ]; do sleep 0.05; done; echo survived` }
        })
        yield* until(
          "the task to be leased",
          Effect.map(admin1.task.get({ taskId: running.id }), (t) => (t.status === "leased" ? t : undefined))
        )
        yield* Scope.close(first, Exit.void)
        yield* worker.proc.waitForLine(/hub connection lost/)
        const hub2 = yield* startHub({ dataDir, tcpPort: hub1.tcpPort })
        const admin2 = yield* hub2.tcpClient()
        yield* worker.proc.waitForLine(new RegExp(`reconnected as ${worker.workerId}`), "60 seconds")
        fs.writeFileSync(marker, "")
        const fresh = yield* admin2.task.enqueue({ projectId, kind: "shell", payload: { command: "echo after-restart" } })
        const [survived, after] = yield* waitAll(admin2, [running.id as TaskId, fresh.id as TaskId])
        assert.strictEqual(survived!.status, "done", survived!.error ?? "")
        assert.strictEqual((survived!.result as { stdout: string }).stdout, "survived\n")
        assert.strictEqual(survived!.attempts, 1)
        assert.strictEqual(after!.status, "done")
        assert.strictEqual((after!.result as { stdout: string }).stdout, "after-restart\n")
        assert.strictEqual(after!.workerId, worker.workerId)
        const workers = yield* admin2.task.workers()
        assert.deepStrictEqual(
          workers.filter((w) => w.connected).map((w) => w.id),
          [worker.workerId]
        )
      }),
    120_000
  )

  it.scopedLive(
    "SIGTERM stops leasing, lets a running task finish within the grace period, and exits 0",
    () =>
      Effect.gen(function* () {
        const { admin, hub, key, projectId } = yield* swarmHub
        const patient = yield* startWorker({ name: "patient", tcpPort: hub.tcpPort, key, args: ["--trust-shell", "--grace-seconds", "60"] })
        const marker = path.join(tempDir(), "go")
        const task = yield* admin.task.enqueue({
          projectId,
          kind: "shell",
          payload: { command: `while [ ! -f ${marker} ]; do sleep 0.05; done; echo graceful` }
        })
        yield* until(
          "the task to be leased",
          Effect.map(admin.task.get({ taskId: task.id }), (t) => (t.status === "leased" ? t : undefined))
        )
        patient.proc.child.kill("SIGTERM")
        yield* patient.proc.waitForLine(/stopping: waiting/)
        const later = yield* admin.task.enqueue({ projectId, kind: "shell", payload: { command: "echo later" } })
        fs.writeFileSync(marker, "")
        const exit = yield* patient.proc.exited()
        assert.strictEqual(exit.code, 0)
        const done = yield* admin.task.get({ taskId: task.id })
        assert.strictEqual(done.status, "done")
        assert.strictEqual((done.result as { stdout: string }).stdout, "graceful\n")
        assert.strictEqual((yield* admin.task.get({ taskId: later.id })).status, "queued")

        const hasty = yield* startWorker({ name: "hasty", tcpPort: hub.tcpPort, key, args: ["--trust-shell", "--grace-seconds", "1"] })
        const [finished] = yield* waitAll(admin, [later.id as TaskId])
        assert.strictEqual(finished!.workerId, hasty.workerId)
        const stuck = yield* admin.task.enqueue({ projectId, kind: "shell", payload: { command: "sleep 120" } })
        yield* until(
          "the task to be leased",
          Effect.map(admin.task.get({ taskId: stuck.id }), (t) => (t.status === "leased" ? t : undefined))
        )
        hasty.proc.child.kill("SIGTERM")
        assert.strictEqual((yield* hasty.proc.exited()).code, 0)
        const released = yield* admin.task.get({ taskId: stuck.id })
        assert.strictEqual(released.status, "queued")
        assert.include(released.error, "hasty stopped before the task finished")
      }),
    120_000
  )

  it.scopedLive(
    "a worker whose key the hub refuses exits 1 and says why",
    () =>
      Effect.gen(function* () {
        const hub = yield* startHub()
        const admin = yield* hub.tcpClient()
        const readKey = (yield* admin.key.create({ name: "reader", scopes: ["read"] })).key
        for (const [token, expected] of [
          [readKey, /error: the hub refused this worker: Forbidden: worker operations need a worker key/],
          ["kiris_unknown", /error: the hub refused this worker: Unauthorized: unknown API key/]
        ] as const) {
          const run = yield* runKiris(["worker", "--hub", `127.0.0.1:${hub.tcpPort}`, "--token", token, "--data-dir", tempDir()], { cwd: tempDir() })
          assert.strictEqual(run.code, 1)
          assert.match(run.stderr, expected)
        }
      }),
    120_000
  )
})
