import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { type HubRpcClient, makeHubClient } from "../../src/client/HubClient.js"
import type { ProjectId, TaskId, WorkerId } from "../../src/domain/Ids.js"
import { runKiris, serveKiris, spawnKiris } from "../support/KirisProcess.js"
import { backends, freshDatabase } from "../support/Pg.js"
import { tempDir } from "./support.js"
import { newProject, swarmHub, until, waitAll, workerKey } from "./swarm-support.js"

/**
 * Two `kiris serve` processes sharing one PostgreSQL database and one data dir, and one `kiris worker`
 * given both addresses: losing the hub it leased a task through does not lose the task.
 */

const tcp = (port: number) => ({ transport: "tcp" as const, host: "127.0.0.1", port })

/** Two hubs on one fresh database and data dir, a worker key, a project, and a worker given both addresses (A first). */
const twoHubsAndAWorker = Effect.gen(function* () {
  const url = yield* freshDatabase
  const dataDir = path.join(tempDir("kiris-failover-"), "data")
  const env = { KIRIS_DATABASE_URL: url }
  const hubA = yield* serveKiris(dataDir, { env })
  const hubB = yield* serveKiris(dataDir, { env })
  const adminA = yield* makeHubClient(tcp(hubA.tcpPort), hubA.adminKey)
  const key = yield* workerKey(adminA)
  const projectId = yield* newProject(adminA)
  const worker = yield* spawnKiris(
    [
      "worker",
      "--hub",
      `127.0.0.1:${hubA.tcpPort},127.0.0.1:${hubB.tcpPort}`,
      "--token",
      key,
      "--name",
      "w",
      "--data-dir",
      tempDir("kiris-wdata-"),
      "--trust-shell",
      "--kinds",
      "shell,noop"
    ],
    { cwd: tempDir("kiris-wcwd-") }
  )
  const connected = yield* worker.waitForLine(/connected as (wrk_\S+) .* via (\S+)$/, "60 seconds")
  assert.strictEqual(connected[2], `127.0.0.1:${hubA.tcpPort}`)
  return { env, dataDir, hubA, hubB, adminA, projectId, worker, workerId: connected[1] as WorkerId }
})

/** A shell task that runs until `release` is called, counting its runs; resolves once it runs on the worker. */
const latchedTask = (admin: HubRpcClient, projectId: ProjectId) =>
  Effect.gen(function* () {
    const dir = tempDir("kiris-latch-")
    const latch = path.join(dir, "go")
    const runs = path.join(dir, "runs")
    const task = yield* admin.task.enqueue({
      projectId,
      kind: "shell",
      payload: { command: `echo run >> '${runs}'; while [ ! -f '${latch}' ]; do sleep 0.05; done; echo finished` }
    })
    yield* until(
      "the task to run on the worker",
      Effect.map(admin.task.get({ taskId: task.id }), (t) => (t.status === "leased" && fs.existsSync(runs) ? t : undefined))
    )
    return { id: task.id as TaskId, release: () => fs.writeFileSync(latch, ""), runs: () => fs.readFileSync(runs, "utf8") }
  })

/** The task ended done, on its first attempt, by `workerId`, with the output of one run. */
const assertDoneOnce = (admin: HubRpcClient, task: Effect.Effect.Success<ReturnType<typeof latchedTask>>, workerId: WorkerId, log: () => string) =>
  Effect.gen(function* () {
    const [done] = yield* waitAll(admin, [task.id], 60_000)
    assert.strictEqual(done!.status, "done", `${done!.error}\n${log()}`)
    assert.strictEqual(done!.attempts, 1)
    assert.strictEqual(done!.workerId, workerId)
    assert.strictEqual((done!.result as { stdout: string }).stdout, "finished\n")
    assert.strictEqual(task.runs(), "run\n")
    // reported once: the worker saw no refusal and dropped nothing
    assert.notInclude(log(), "refused")
    assert.notInclude(log(), "could not report")
  })

const reconnectedTo = (port: number, workerId: WorkerId) => new RegExp(`reconnected as ${workerId} .* via 127\\.0\\.0\\.1:${port}$`)

describe.skipIf(!backends.includes("pg"))("worker failover between hubs sharing a database", () => {
  it.scopedLive(
    "a hub killed mid-task: the worker reconnects to the other hub, the task ends done exactly once, and new work runs",
    () =>
      Effect.gen(function* () {
        const { adminA, hubA, hubB, projectId, worker, workerId } = yield* twoHubsAndAWorker
        const adminB = yield* makeHubClient(tcp(hubB.tcpPort), hubB.adminKey)
        const task = yield* latchedTask(adminA, projectId)
        const leased = yield* adminB.task.get({ taskId: task.id })
        assert.strictEqual(leased.workerId, workerId)

        hubA.proc.child.kill("SIGKILL")
        yield* hubA.proc.exited()
        yield* worker.waitForLine(reconnectedTo(hubB.tcpPort, workerId), "60 seconds")
        task.release()
        yield* assertDoneOnce(adminB, task, workerId, worker.stdout)

        const after = yield* adminB.task.enqueue({ projectId, kind: "shell", payload: { command: "echo after" } })
        const [ran] = yield* waitAll(adminB, [after.id as TaskId], 60_000)
        assert.strictEqual(ran!.status, "done", `${ran!.error}\n${worker.stdout()}`)
        assert.strictEqual(ran!.workerId, workerId)
        assert.strictEqual((ran!.result as { stdout: string }).stdout, "after\n")
      }),
    180_000
  )

  it.scopedLive(
    "a result finished while no hub answers is kept and reported to the hub that comes back",
    () =>
      Effect.gen(function* () {
        const { adminA, dataDir, env, hubA, hubB, projectId, worker, workerId } = yield* twoHubsAndAWorker
        const task = yield* latchedTask(adminA, projectId)
        hubA.proc.child.kill("SIGKILL")
        hubB.proc.child.kill("SIGKILL")
        yield* hubA.proc.exited()
        yield* hubB.proc.exited()

        task.release()
        yield* worker.waitForLine(new RegExp(`done ${task.id} shell`), "60 seconds")
        const back = yield* serveKiris(dataDir, { env, httpPort: hubB.httpPort, tcpPort: hubB.tcpPort })
        yield* worker.waitForLine(reconnectedTo(back.tcpPort, workerId), "60 seconds")
        const admin = yield* makeHubClient(tcp(back.tcpPort), back.adminKey)
        yield* assertDoneOnce(admin, task, workerId, worker.stdout)
      }),
    180_000
  )
})

/** A local TCP port nothing listens on (bound once, then closed). */
const closedPort = Effect.async<number>((resume) => {
  const server = net.createServer().listen(0, "127.0.0.1", () => {
    const port = (server.address() as net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

describe("a worker given several hub addresses", () => {
  it.scopedLive(
    "takes them from KIRIS_HUB too, and connects to the first that answers",
    () =>
      Effect.gen(function* () {
        const { admin, hub, key, projectId } = yield* swarmHub
        const dead = yield* closedPort
        const worker = yield* spawnKiris(["worker", "--token", key, "--name", "w", "--data-dir", tempDir("kiris-wdata-"), "--kinds", "noop"], {
          cwd: tempDir("kiris-wcwd-"),
          env: { KIRIS_HUB: `127.0.0.1:${dead}, 127.0.0.1:${hub.tcpPort}` }
        })
        yield* worker.waitForLine(new RegExp(`^kiris worker w: hubs 127\\.0\\.0\\.1:${dead}, 127\\.0\\.0\\.1:${hub.tcpPort},`))
        const connected = yield* worker.waitForLine(/connected as (wrk_\S+) .* via (\S+)$/, "60 seconds")
        assert.strictEqual(connected[2], `127.0.0.1:${hub.tcpPort}`)
        const task = yield* admin.task.enqueue({ projectId, kind: "noop", payload: { n: 1 } })
        const [done] = yield* waitAll(admin, [task.id as TaskId], 60_000)
        assert.strictEqual(done!.status, "done")
        assert.strictEqual(done!.workerId, connected[1])
      }),
    120_000
  )

  it.scopedLive("refuses a list mixing host:port and WebSocket addresses", () =>
    Effect.gen(function* () {
      const run = yield* runKiris(["worker", "--hub", "127.0.0.1:1,ws://127.0.0.1:2", "--token", "k", "--data-dir", tempDir("kiris-wdata-")], {
        cwd: tempDir("kiris-wcwd-")
      })
      assert.strictEqual(run.code, 1)
      assert.strictEqual(run.stderr.trim(), "error: --hub: give either host:port addresses or WebSocket URLs, not both")
    })
  )
})
