import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { makeHubClient } from "../../src/client/HubClient.js"
import type { TaskId } from "../../src/domain/Ids.js"
import type { Task, TaskStats, WorkerInfo } from "../../src/domain/Task.js"
import { runKiris, spawnKiris, type Finished } from "../support/KirisProcess.js"
import { tempDir } from "../worker/support.js"
import { until } from "../worker/swarm-support.js"

/** `kiris up` and the swarm commands as a user runs them, in one working directory. */

const processesUsing = (dir: string) =>
  fs
    .readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return fs.readFileSync(`/proc/${p}/cmdline`, "utf8").includes(dir)
      } catch {
        return false
      }
    })

const startUp = (cwd: string, args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const up = yield* spawnKiris(["up", "--port", "0", "--tcp-port", "0", ...args], { cwd })
    const port = Number((yield* up.waitForLine(/tcp=127\.0\.0\.1:(\d+)/, "60 seconds"))[1])
    yield* up.waitForLine(/workers 2\/2/, "90 seconds")
    const kiris = (...argv: Array<string>) => runKiris([...argv, "--hub", `127.0.0.1:${port}`], { cwd })
    return { up, port, kiris }
  })

/** The command `kiris up` suggests on start (`try: npx kiris …`), as arguments. */
const suggested = (up: { waitForLine: (pattern: RegExp) => Effect.Effect<RegExpMatchArray> }) =>
  Effect.map(up.waitForLine(/^try: npx kiris (.+?) {4}\(Ctrl-C stops everything\)$/), (m) =>
    (m[1]!.match(/"[^"]*"|\S+/g) ?? []).map((a) => a.replace(/^"(.*)"$/, "$1"))
  )

const ok = (run: Finished) => {
  assert.strictEqual(run.code, 0, `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`)
  return run.stdout
}

const stopped = (up: { child: { kill: (s: NodeJS.Signals) => boolean }; exited: () => Effect.Effect<{ code: number | null }> }, cwd: string) =>
  Effect.gen(function* () {
    up.child.kill("SIGTERM")
    assert.strictEqual((yield* up.exited()).code, 0)
    assert.deepStrictEqual(processesUsing(path.join(cwd, ".kiris")), [])
  })

describe("kiris up and the swarm commands", () => {
  it.scopedLive(
    "up --trust-shell runs `enqueue --kind shell --wait` and the task, map and worker commands work against it",
    () =>
      Effect.gen(function* () {
        const cwd = tempDir("kiris-up-")
        const { up, port, kiris } = yield* startUp(cwd, ["--trust-shell"])
        const hint = yield* suggested(up)
        assert.deepStrictEqual(hint, ["enqueue", "--kind", "shell", "--wait", "echo hi"])
        assert.strictEqual(ok(yield* kiris(...hint)), "hi\n")
        assert.strictEqual(fs.statSync(path.join(cwd, ".kiris", "worker.key")).mode & 0o777, 0o600)

        const failing = yield* kiris("enqueue", "--kind", "shell", "--max-attempts", "1", "--wait", "echo broken >&2; exit 3")
        assert.strictEqual(failing.code, 1)
        assert.match(failing.stderr, /error: task tsk_\S+ (failed|dead|failed \(no attempts left\)).*exited with code 3.*broken/)

        const id = ok(yield* kiris("enqueue", "--kind", "noop", "ping")).trim() as TaskId
        assert.match(id, /^tsk_/)
        assert.deepStrictEqual(JSON.parse(ok(yield* kiris("wait", id))).echo, { prompt: "ping" })
        assert.match(ok(yield* kiris("task", id)), /status:\s+done/)
        const listed = JSON.parse(ok(yield* kiris("tasks", "--json", "--project", "default"))) as Array<Task>
        assert.strictEqual(listed.length, 3)
        const stats = JSON.parse(ok(yield* kiris("stats", "--json"))) as TaskStats
        assert.strictEqual(stats.done, 2)
        const workers = JSON.parse(ok(yield* kiris("workers", "--json"))) as Array<WorkerInfo>
        assert.deepStrictEqual(workers.map((w) => [w.name, w.connected]).sort(), [
          ["local-1", true],
          ["local-2", true]
        ])

        const failedId = listed.find((t) => t.kind === "shell" && t.status !== "done")!.id
        assert.match(ok(yield* kiris("retry", failedId)), new RegExp(`^${failedId} queued`))

        const admin = yield* makeHubClient(
          { transport: "tcp", host: "127.0.0.1", port },
          fs.readFileSync(path.join(cwd, ".kiris", "admin.key"), "utf8").trim()
        )
        const long = ok(yield* kiris("enqueue", "--kind", "shell", "sleep 120")).trim() as TaskId
        yield* until(
          "the long task to run",
          Effect.map(admin.task.get({ taskId: long }), (t) => (t.status === "leased" ? t : undefined))
        )
        assert.strictEqual(ok(yield* kiris("cancel", long)), `${long} cancelled\n`)
        assert.strictEqual((yield* admin.task.get({ taskId: long })).status, "cancelled")

        const items = path.join(cwd, "items.jsonl")
        fs.writeFileSync(items, '"alpha"\n"beta"\n\n"it\'s"\n')
        const reduce = 'cat "$KIRIS_INPUTS_FILE"'
        const mapped = ok(yield* kiris("map", "--input", items, "--template", "echo {item}", "--kind", "shell", "--reduce", reduce, "--wait"))
        const inputs = JSON.parse(mapped) as Record<string, { stdout: string }>
        assert.deepStrictEqual(
          Object.values(inputs)
            .map((r) => r.stdout)
            .sort(),
          ["alpha\n", "beta\n", "it's\n"]
        )

        yield* stopped(up, cwd)
      }),
    240_000
  )

  it.scopedLive(
    "without --trust-shell the suggested first command works and a shell enqueue explains why it will not run",
    () =>
      Effect.gen(function* () {
        const cwd = tempDir("kiris-up-")
        const { up, kiris } = yield* startUp(cwd, [])
        // What the first run suggests works on these defaults.
        const hint = yield* suggested(up)
        assert.deepStrictEqual(JSON.parse(ok(yield* kiris(...hint))).echo, { prompt: "hello" })
        const refused = yield* kiris("enqueue", "--kind", "shell", "--wait", "echo hi")
        assert.strictEqual(refused.code, 1)
        assert.strictEqual(refused.stdout, "")
        assert.include(refused.stderr, "this worker was started without --trust-shell")
        yield* stopped(up, cwd)
      }),
    180_000
  )
})
