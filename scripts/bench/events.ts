/**
 * The project event log: replay and the cost of logging. Runs a whole hub in this process (data in
 * a temp dir) and reports
 *   1. replay: `--events` events (default 50,000; streaming deltas of a turn) logged for one
 *      project, then read back by one WebSocket client subscribing with `since: 0`, up to `Ready`:
 *      events/s from the log to the client;
 *   2. a streaming turn: `--deltas` deltas (default 20,000) through `EventBus.publish` one at a
 *      time (numbered, appended to the log, delivered to one live subscriber), the same in batches
 *      of `--batch` (default 16, as a turn's recorder flushes them), both inside the project's
 *      fiber as a turn runs, against an in-memory `PubSub` with one subscriber (no log) as the
 *      baseline — all in the same run.
 * Peak RSS is printed at the end. Usage:
 *   npm run bench -- events [--events 50000] [--deltas 20000] [--batch 16]
 */
import { NodeContext } from "@effect/platform-node"
import { HttpServer } from "@effect/platform"
import { Context, Effect, Exit, Fiber, Layer, PubSub, Queue, Scope, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { HubLayer } from "../../src/AppLayer.js"
import { makeHubClient } from "../../src/client/HubClient.js"
import { ServerConfig } from "../../src/config/ServerConfig.js"
import type { EventBody } from "../../src/domain/Event.js"
import type { MessageId, PartId, ProjectId, SessionId } from "../../src/domain/Ids.js"
import { EventBus } from "../../src/events/EventBus.js"
import { ProjectDb } from "../../src/storage/ProjectDb.js"
import { flag } from "./_flags.js"
import { mb, peakRss, runBench } from "./_main.js"

const events = flag("events", 50_000)
const deltas = flag("deltas", 20_000)
const batch = Math.max(1, flag("batch", 16))
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kiris-bench-events-"))

const rate = (n: number, ms: number) => `${Math.round(n / (ms / 1000)).toLocaleString("en-US")}/s`

/** A text delta of an assistant message, as a model streams them (a few words each). */
const delta = (i: number): EventBody => ({
  _tag: "PartDelta",
  sessionId: "ses_bench" as SessionId,
  messageId: "msg_bench" as MessageId,
  partId: "prt_bench" as PartId,
  delta: `token ${i} of the answer `
})

const program = Effect.gen(function* () {
  const config = ServerConfig.layerWith({ dataDir, port: 0, tcpPort: 0, eventBuffer: Math.max(events, deltas) * 2, subscriberBufferBytes: 1024 ** 3 })
  const context = yield* Layer.build(HubLayer.pipe(Layer.provide(config), Layer.provide(NodeContext.layer)))
  const httpPort = (Context.get(context, HttpServer.HttpServer).address as HttpServer.TcpAddress).port
  const adminKey = fs.readFileSync(path.join(dataDir, "admin.key"), "utf8").trim()
  const client = yield* makeHubClient({ transport: "ws", url: `ws://127.0.0.1:${httpPort}/rpc` }, adminKey)
  const bus = Context.get(context, EventBus)
  const dbs = Context.get(context, ProjectDb)

  // 1. Replay from the log to one WebSocket client.
  const replayed = yield* client.project.create({ name: "replay" })
  const replayId = replayed.id as ProjectId
  let started = performance.now()
  for (let i = 0; i < events; i += 500) {
    yield* bus.publishAll(
      replayId,
      Array.from({ length: Math.min(500, events - i) }, (_, j) => delta(i + j))
    )
  }
  const filled = performance.now() - started
  const head = yield* bus.lastSeq(replayId)
  console.log(`replay: ${events} deltas logged in ${(filled / 1000).toFixed(2)} s (batches of 500: ${rate(events, filled)}); log head ${head}`)
  started = performance.now()
  let received = 0
  yield* client.events.subscribe({ projectId: replayId, since: 0 }).pipe(
    Stream.takeWhile((item) => item._tag !== "Ready"),
    Stream.runForEach((item) => Effect.sync(() => void (item._tag === "Event" && received++)))
  )
  const replayMs = performance.now() - started
  if (received !== head) throw new Error(`replayed ${received} events, expected ${head}`)
  console.log(`  since: 0 over WebSocket                 ${received} events in ${(replayMs / 1000).toFixed(2)} s: ${rate(received, replayMs)}`)

  // 2. A streaming turn's deltas: with the log, and an in-memory bus as the baseline.
  const turn = yield* client.project.create({ name: "turn" })
  const turnId = turn.id as ProjectId
  console.log(`streaming turn: ${deltas} deltas, one live subscriber draining`)

  /** A live subscriber (registered now) that takes `n` events, then unsubscribes. */
  const drained = (n: number) =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const items = yield* Scope.extend(bus.subscribeProject(turnId), scope)
      return yield* items.pipe(
        Stream.filter((item) => item._tag === "Event"),
        Stream.take(n),
        Stream.runDrain,
        Effect.ensuring(Scope.close(scope, Exit.void)),
        Effect.fork
      )
    })

  const timed = (label: string, run: Effect.Effect<void>, waitFor: Effect.Effect<unknown>) =>
    Effect.gen(function* () {
      const t = performance.now()
      yield* run
      yield* waitFor
      const ms = performance.now() - t
      console.log(`  ${label.padEnd(40)} ${(ms / 1000).toFixed(2)} s: ${rate(deltas, ms)}`)
    })

  {
    const pubsub = yield* PubSub.unbounded<EventBody>()
    const queue = yield* PubSub.subscribe(pubsub)
    const consumer = yield* Effect.fork(Effect.repeatN(Queue.take(queue), deltas - 1))
    yield* timed(
      "baseline: in-memory PubSub",
      Effect.forEach(
        Array.from({ length: deltas }, (_, i) => i),
        (i) => PubSub.publish(pubsub, delta(i)),
        { discard: true }
      ),
      Fiber.join(consumer)
    )
  }
  {
    const consumer = yield* drained(deltas)
    yield* timed(
      "EventBus.publish, one at a time",
      dbs.withProject(turnId)(
        Effect.forEach(
          Array.from({ length: deltas }, (_, i) => i),
          (i) => bus.publish(turnId, delta(i)),
          { discard: true }
        )
      ),
      Fiber.join(consumer)
    )
  }
  {
    const consumer = yield* drained(deltas)
    const batches = Array.from({ length: Math.ceil(deltas / batch) }, (_, b) =>
      Array.from({ length: Math.min(batch, deltas - b * batch) }, (_, j) => delta(b * batch + j))
    )
    yield* timed(
      `EventBus.publishAll, batches of ${batch}`,
      dbs.withProject(turnId)(Effect.forEach(batches, (bodies) => bus.publishAll(turnId, bodies), { discard: true })),
      Fiber.join(consumer)
    )
  }
  {
    const consumer = yield* drained(deltas)
    yield* timed(
      "EventBus.publish, outside the project",
      Effect.forEach(
        Array.from({ length: deltas }, (_, i) => i),
        (i) => bus.publish(turnId, delta(i)),
        { discard: true }
      ),
      Fiber.join(consumer)
    )
  }
  const logged = yield* bus.lastSeq(turnId)
  console.log(`  log head after the runs                 ${logged} (${logged - 1} deltas and ProjectCreated)`)
  const dbFile = path.join(dataDir, "projects", turnId, "project.db")
  console.log(
    `  project.db (+ WAL)                      ${mb(fs.statSync(dbFile).size + (fs.existsSync(`${dbFile}-wal`) ? fs.statSync(`${dbFile}-wal`).size : 0))}`
  )
  console.log(peakRss())
})

void runBench(program, dataDir)
