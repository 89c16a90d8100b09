import { Duration, Effect } from "effect"
import type { HubRpcClient } from "../../src/client/HubClient.js"
import type { ProjectId, TaskId, WorkerId } from "../../src/domain/Ids.js"
import { type Task, terminalStatuses } from "../../src/domain/Task.js"
import { startHub } from "../support/Hub.js"
import { spawnKiris } from "../support/KirisProcess.js"
import { pollUntil } from "../support/Until.js"
import { tempDir } from "./support.js"

/** A key with only the worker scope, made by the hub's admin. */
export const workerKey = (client: HubRpcClient) =>
  Effect.map(client.key.create({ name: "test workers", scopes: ["worker"] }), (created) => created.key)

export const newProject = (client: HubRpcClient, name = "swarm") => Effect.map(client.project.create({ name }), (p) => p.id as ProjectId)

/** A hub in this process with an admin client, a worker key and a project for the tasks. */
export const swarmHub = Effect.gen(function* () {
  const hub = yield* startHub()
  const admin = yield* hub.tcpClient()
  const key = yield* workerKey(admin)
  const projectId = yield* newProject(admin)
  return { hub, admin, key, projectId }
})

export interface WorkerOptions {
  readonly name: string
  readonly tcpPort: number
  readonly key: string
  readonly args?: ReadonlyArray<string>
  readonly env?: Record<string, string>
}

/** A real `kiris worker` child process; resolves once it is registered, with its worker id. */
export const startWorker = (o: WorkerOptions) =>
  Effect.gen(function* () {
    const proc = yield* spawnKiris(
      ["worker", "--hub", `127.0.0.1:${o.tcpPort}`, "--token", o.key, "--name", o.name, "--data-dir", tempDir("kiris-wdata-"), ...(o.args ?? [])],
      { cwd: tempDir("kiris-wcwd-"), ...(o.env === undefined ? {} : { env: o.env }) }
    )
    const m = yield* proc.waitForLine(/connected as (wrk_\S+)/, "60 seconds")
    return { proc, workerId: m[1] as WorkerId }
  })

/** Task states once every one has ended (polling `task.wait`, bounded by a deadline). */
export const waitAll = (client: HubRpcClient, ids: ReadonlyArray<TaskId>, timeoutMs = 120_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const tasks = yield* client.task.wait({ taskIds: ids, timeoutMs: 2000 })
      if (tasks.every((t) => terminalStatuses.includes(t.status))) return tasks
      if (Date.now() > deadline) {
        const open = tasks.filter((t) => !terminalStatuses.includes(t.status)).map((t) => `${t.id}:${t.status}`)
        return yield* Effect.dieMessage(`tasks still open after ${timeoutMs} ms: ${open.slice(0, 10).join(" ")}`)
      }
    }
  })

/** Polls `check` every 50 ms with a deadline. */
export const until = <A>(what: string, check: Effect.Effect<A | undefined, unknown>, timeoutMs = 30_000) =>
  pollUntil(what, Effect.orDie(check), { timeout: Duration.millis(timeoutMs), interval: "50 millis" })

export const byId = (tasks: ReadonlyArray<Task>) => new Map(tasks.map((t) => [t.id, t]))
