import * as Reactivity from "@effect/experimental/Reactivity"
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer } from "effect"
import { ServerConfig } from "../../src/config/ServerConfig.js"
import { makeGroupCommit } from "../../src/queue/sql/GroupCommit.js"
import { DatabaseLive } from "../../src/storage/Database.js"
import { QueueDb } from "../../src/storage/QueueDb.js"
import { type Backend, backendConfig, backends } from "../support/Pg.js"
import { tempDir } from "../support/Hub.js"

/** The queue database alone: a `queue.db` in a temp dir, or the tables of a fresh PostgreSQL database. */
const queueDbOn = (backend: Backend) =>
  Layer.unwrapScoped(
    Effect.map(backendConfig(backend), (store) =>
      (backend === "sqlite" ? QueueDb.layer : DatabaseLive).pipe(
        Layer.provide(ServerConfig.layerWith({ ...store, dataDir: tempDir("kiris-gc-") })),
        Layer.provide(Reactivity.layer)
      )
    )
  )

describe.each(backends)("group commit on %s", (backend) => {
  const QueueDbTest = queueDbOn(backend)

  it.scopedLive("runs concurrent operations in one transaction and resolves each caller", () =>
    Effect.gen(function* () {
      const sql = yield* QueueDb
      let batches = 0
      const writer = yield* makeGroupCommit(sql, () => Effect.sync(() => batches++))
      const results = yield* Effect.all(
        Array.from({ length: 50 }, (_, i) => writer.run(() => Effect.as(sql.unsafe("SELECT 1"), i))),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(
        results,
        Array.from({ length: 50 }, (_, i) => i)
      )
      assert.isBelow(batches, 50, "operations were grouped")
    }).pipe(Effect.provide(QueueDbTest))
  )

  it.scopedLive("one operation's SQL failure fails only that operation", () =>
    Effect.gen(function* () {
      const sql = yield* QueueDb
      const gate = yield* Deferred.make<void>()
      let first = true
      const writer = yield* makeGroupCommit(sql, () =>
        first ? Effect.sync(() => (first = false)).pipe(Effect.zipRight(Deferred.await(gate))) : Effect.void
      )
      const blocker = yield* Effect.fork(writer.run(() => Effect.void))
      const good = yield* Effect.fork(writer.run(() => Effect.as(sql.unsafe("SELECT 1"), "ok")))
      const bad = yield* Effect.fork(writer.run(() => sql.unsafe("SELECT * FROM no_such_table")))
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(blocker)
      assert.strictEqual(yield* Fiber.join(good), "ok")
      const badExit = yield* Fiber.await(bad)
      assert.strictEqual(badExit._tag, "Failure")
    }).pipe(Effect.provide(QueueDbTest))
  )

  it.scopedLive("an interrupted caller's committed result is handed to its abandon handler", () =>
    Effect.gen(function* () {
      const sql = yield* QueueDb
      const gate = yield* Deferred.make<void>()
      const writer = yield* makeGroupCommit(sql, () => Deferred.await(gate))
      const abandoned = yield* Deferred.make<string>()
      const caller = yield* Effect.fork(
        writer.submit<string, never>(
          (done) => ({ _tag: "Run", run: () => Effect.succeed("leased"), done: done as unknown as Deferred.Deferred<unknown, unknown> }),
          (result) => Deferred.succeed(abandoned, result)
        )
      )
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(caller)
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Deferred.await(abandoned), "leased")
    }).pipe(Effect.provide(QueueDbTest))
  )

  it.scopedLive("a burst waits for room: the backlog never exceeds its bound and every operation commits", () =>
    Effect.gen(function* () {
      const sql = yield* QueueDb
      const gate = yield* Deferred.make<void>()
      let batches = 0
      // the first batch holds the writer (its post-commit step waits for the gate) while the burst arrives
      const writer = yield* makeGroupCommit(sql, () => (batches++ === 0 ? Deferred.await(gate) : Effect.void), new Map(), { maxBacklog: 8 })
      const blocker = yield* Effect.fork(writer.run(() => Effect.void))
      yield* waitUntil(() => batches === 1)
      const burst = yield* Effect.fork(
        Effect.all(
          Array.from({ length: 100 }, (_, i) => writer.run(() => Effect.as(sql.unsafe("SELECT 1"), i))),
          { concurrency: "unbounded" }
        )
      )
      // every caller has had its turn: 8 are in the backlog, the other 92 wait for room
      yield* waitUntil(() => writer.backlog() === 8)
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
      assert.strictEqual(writer.backlog(), 8)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(blocker)
      assert.deepStrictEqual(
        yield* Fiber.join(burst),
        Array.from({ length: 100 }, (_, i) => i)
      )
      assert.strictEqual(writer.peakBacklog(), 8, "the backlog filled up to its bound and no further")
      assert.strictEqual(writer.backlog(), 0)
    }).pipe(Effect.provide(QueueDbTest))
  )
})

describe.skipIf(!backends.includes("pg"))("group commit of several hubs on one PostgreSQL database", () => {
  it.scopedLive("the writers of two hubs commit one batch at a time (no lost update)", () =>
    Effect.gen(function* () {
      const store = yield* backendConfig("pg")
      const open = Layer.build(
        DatabaseLive.pipe(Layer.provide(ServerConfig.layerWith({ ...store, dataDir: tempDir("kiris-gc-") })), Layer.provide(Reactivity.layer))
      )
      const clients = [Context.get(yield* open, QueueDb), Context.get(yield* open, QueueDb)]
      yield* clients[0]!.unsafe("CREATE TABLE counter (n BIGINT NOT NULL)")
      yield* clients[0]!.unsafe("INSERT INTO counter VALUES (0)")
      const writers = yield* Effect.forEach(clients, (sql) => makeGroupCommit(sql, () => Effect.void))
      // read-modify-write: two hubs' transactions interleaving would lose increments
      const increment = (sql: (typeof clients)[number]) =>
        Effect.flatMap(sql.unsafe<{ n: number }>("SELECT n FROM counter"), ([row]) => sql.unsafe("UPDATE counter SET n = $1", [row!.n + 1]))
      yield* Effect.all(
        writers.flatMap((writer, i) => Array.from({ length: 100 }, () => writer.run(() => increment(clients[i]!)))),
        { concurrency: "unbounded", discard: true }
      )
      const [{ n }] = (yield* clients[1]!.unsafe<{ n: number }>("SELECT n FROM counter")) as [{ n: number }]
      assert.strictEqual(n, 200)
    })
  )
})

/** Polls `condition` (yielding between tries) until it holds; dies after 5 s. */
const waitUntil = (condition: () => boolean) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 5000
    while (!condition()) {
      if (Date.now() > deadline) return yield* Effect.dieMessage("condition not met within 5 s")
      yield* Effect.sleep("1 millis")
    }
  })
