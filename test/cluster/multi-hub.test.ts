import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Queue } from "effect"
import { makeHubClient } from "../../src/client/HubClient.js"
import type { SubscriptionItem } from "../../src/domain/Event.js"
import type { TaskId } from "../../src/domain/Ids.js"
import { EnqueueTask, type Task } from "../../src/domain/Task.js"
import { serveKiris, spawnKiris } from "../support/KirisProcess.js"
import { backends, freshDatabase } from "../support/Pg.js"
import { subscribeQueued } from "../support/Subscribe.js"
import { tempDir } from "../support/TempDir.js"
import { newProject, until, workerKey } from "../worker/swarm-support.js"

const TASKS = 2000
const BATCH = 250

/**
 * Two `kiris serve` processes on one PostgreSQL database and one data dir, three `kiris worker`
 * processes spread over them (each given both addresses), 2,000 no-op tasks enqueued through both
 * hubs; one hub is SIGKILLed mid-run.
 */
describe.runIf(backends.includes("pg"))("several hubs on one PostgreSQL database", () => {
  it.scopedLive(
    "a hub SIGKILLed mid-run: every task ends done exactly once, its workers move to the live hub, whose subscriber saw the dead hub's tasks",
    () =>
      Effect.gen(function* () {
        const url = yield* freshDatabase
        const dataDir = tempDir("kiris-cluster-")
        // Short leases: a lease held through the dead hub and never completed is re-leased within seconds.
        const env = { KIRIS_DATABASE_URL: url, KIRIS_LEASE_SECONDS: "5", KIRIS_REAPER_INTERVAL_MS: "200" }
        const a = yield* serveKiris(dataDir, { env })
        const b = yield* serveKiris(dataDir, { env })
        const clientA = yield* makeHubClient({ transport: "tcp", host: "127.0.0.1", port: a.tcpPort }, a.adminKey)
        const clientB = yield* makeHubClient({ transport: "tcp", host: "127.0.0.1", port: b.tcpPort }, b.adminKey)
        const projectId = yield* newProject(clientA, "cluster")
        const key = yield* workerKey(clientB)

        // The live hub's subscriber, from before the first task.
        const events = yield* subscribeQueued(clientB, projectId)

        // Each worker knows both hubs, its own first.
        const worker = (name: string, first: number, second: number) =>
          Effect.gen(function* () {
            const proc = yield* spawnKiris(
              ["worker", "--hub", `127.0.0.1:${first},127.0.0.1:${second}`, "--token", key, "--name", name, "--lease-seconds", "5"],
              { cwd: tempDir("kiris-wcwd-"), env: { KIRIS_DATA_DIR: tempDir("kiris-wdata-") } }
            )
            yield* proc.waitForLine(/connected as (wrk_\S+)/, "60 seconds")
            return proc
          })
        const workers = yield* Effect.all(
          [worker("w1", a.tcpPort, b.tcpPort), worker("w2", b.tcpPort, a.tcpPort), worker("w3", a.tcpPort, b.tcpPort)],
          {
            concurrency: "unbounded"
          }
        )

        // Half the tasks through each hub, in alternating batches.
        const throughA = new Set<TaskId>()
        const all: Array<TaskId> = []
        for (let i = 0; i < TASKS / BATCH; i++) {
          const client = i % 2 === 0 ? clientA : clientB
          const tasks = Array.from({ length: BATCH }, (_, j) => EnqueueTask.make({ projectId, kind: "noop", payload: { n: i * BATCH + j } }))
          const created = yield* client.task.enqueueBatch({ tasks })
          for (const t of created) {
            all.push(t.id)
            if (i % 2 === 0) throughA.add(t.id)
          }
        }

        // What the subscriber on B has seen: how often each task was reported done.
        const doneSeen = new Map<TaskId, number>()
        const drain = Effect.map(Queue.takeAll(events), (items) => {
          for (const item of Chunk.toReadonlyArray(items) as ReadonlyArray<SubscriptionItem>) {
            if (item._tag === "Lagged") throw new Error(`the subscriber on the live hub lagged at seq ${item.lastSeq}`)
            if (item._tag !== "Event" || item.event.event._tag !== "TasksChanged") continue
            for (const t of item.event.event.tasks as ReadonlyArray<Task>) {
              if (t.status === "done") doneSeen.set(t.id, (doneSeen.get(t.id) ?? 0) + 1)
            }
          }
          return doneSeen.size
        })

        // Mid-run: a fifth of the tasks done, then hub A dies without warning.
        yield* until(
          "a fifth of the tasks done",
          Effect.map(drain, (n) => (n >= TASKS / 5 ? n : undefined)),
          120_000
        )
        const seenBeforeKill = new Set(doneSeen.keys())
        a.proc.child.kill("SIGKILL")
        yield* a.proc.exited("10 seconds")

        // Every task ends done, reported through the live hub.
        const final = yield* until(
          "every task done",
          Effect.gen(function* () {
            const stats = yield* clientB.task.stats({ projectId })
            return stats.done === TASKS ? stats : undefined
          }),
          180_000
        )
        assert.strictEqual(final.done, TASKS)
        for (let i = 0; i < all.length; i += 1000) {
          const tasks = yield* clientB.task.wait({ taskIds: all.slice(i, i + 1000), timeoutMs: 0 })
          for (const t of tasks) assert.strictEqual(t.status, "done", `${t.id} ended ${t.status}`)
        }

        // Workers connected to the dead hub reconnected to the live one.
        const listed = yield* until(
          "three workers connected to the live hub",
          Effect.map(clientB.task.workers(), (ws) => {
            const connected = ws.filter((w) => w.connected).map((w) => w.name)
            return ["w1", "w2", "w3"].every((n) => connected.includes(n)) ? connected : undefined
          }),
          60_000
        )
        assert.includeMembers(listed, ["w1", "w2", "w3"])
        for (const w of workers) assert.strictEqual(w.child.exitCode, null, "a worker exited")

        // Exactly once: no task was reported done twice; the subscriber on B saw tasks enqueued
        // through the dead hub finish, before and after it died.
        yield* until(
          "the subscriber caught up",
          Effect.map(drain, (n) => (n >= TASKS ? n : undefined)),
          60_000
        ).pipe(Effect.catchAllDefect(() => Effect.void))
        const twice = [...doneSeen].filter(([, n]) => n > 1).map(([id]) => id)
        assert.deepStrictEqual(twice, [], "tasks reported done more than once")
        const fromA = [...doneSeen.keys()].filter((id) => throughA.has(id))
        assert.ok(
          fromA.some((id) => seenBeforeKill.has(id)),
          "the subscriber on B saw no task enqueued through A finish before A died"
        )
        assert.ok(
          fromA.some((id) => !seenBeforeKill.has(id)),
          "the subscriber on B saw no task enqueued through A finish after A died"
        )
        // A hub killed between a queue commit and its event append loses those events (the tasks'
        // state is intact, as checked above): at most one of its write batches.
        const unseen = all.filter((id) => !doneSeen.has(id))
        assert.isAtMost(unseen.length, BATCH, `done events never seen on the live hub: ${unseen.length}`)
      }),
    420_000
  )
})
