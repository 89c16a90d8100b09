import { assert, describe, it } from "@effect/vitest"
import { RootDb } from "../../src/storage/RootDb.js"
import { Context, Effect, Option, Redacted } from "effect"
import type { EventBody } from "../../src/domain/Event.js"
import type { MessageId, PartId, ProjectId, SessionId, TaskId } from "../../src/domain/Ids.js"
import { EventBus } from "../../src/events/EventBus.js"
import { startHubWithIdleModel, tempDir, type TestHub } from "../support/Hub.js"
import { backends, freshDatabase } from "../support/Pg.js"
import { pollUntil } from "../support/Until.js"
import { eventsOf, type Item, range, record, seqsOf } from "./support.js"

/**
 * Hubs sharing one PostgreSQL database (and one data dir) share every project's event log: events
 * published through any of them get one contiguous run of seqs, in commit order, and reach the
 * subscribers of every hub in that order, exactly once; `since` resumes across hubs.
 */

/** Two whole hubs on one fresh database and one data dir. */
const twoHubs = Effect.gen(function* () {
  const databaseUrl = yield* freshDatabase
  const dataDir = tempDir()
  const options = { dataDir, databaseUrl: Option.some(Redacted.make(databaseUrl)) }
  const a = yield* startHubWithIdleModel(options)
  const b = yield* startHubWithIdleModel(options)
  return { a, b }
})

const busOf = (hub: TestHub) => Context.get(hub.context, EventBus)

/** A task progress event carrying `mark`, so each published event can be told apart. */
const progress = (mark: string): EventBody => ({ _tag: "TaskProgress", taskId: "task_x" as TaskId, parts: [mark] })

/** A streamed delta carrying `mark`, each to a part of its own (so no backlog joins two). */
const delta = (mark: string): EventBody => ({
  _tag: "PartDelta",
  sessionId: "ses_x" as SessionId,
  messageId: "msg_x" as MessageId,
  partId: `part_${mark}` as PartId,
  delta: mark
})

const marksOf = (items: ReadonlyArray<Item>) =>
  eventsOf(items).map((e) =>
    e.event._tag === "TaskProgress" ? String(e.event.parts[0]) : e.event._tag === "PartDelta" ? e.event.delta : e.event._tag
  )

/** The events after the subscriber's `Ready`, once it has seen `count` of them. */
const liveAfterReady = (sub: Effect.Effect.Success<ReturnType<typeof record>>, count: number) =>
  Effect.gen(function* () {
    const ready = yield* sub.ready
    if (ready._tag !== "Ready") return yield* Effect.die(new Error("no Ready"))
    yield* sub.reached(ready.seq + count)
    const items = yield* sub.items
    return { head: ready.seq, items: items.slice(items.indexOf(ready) + 1) }
  })

describe.skipIf(!backends.includes("pg"))("project events across hubs sharing PostgreSQL", () => {
  it.scopedLive("events published through two hubs at once reach subscribers on both, contiguous, in order, once each; since resumes across", () =>
    Effect.gen(function* () {
      const { a, b } = yield* twoHubs
      const clientA = yield* a.tcpClient()
      const clientB = yield* b.tcpClient()
      const project = yield* clientA.project.create({ name: "shared", description: "" })
      const id = project.id as ProjectId
      const onA = yield* record(clientA, id)
      const onB = yield* record(clientB, id)
      yield* onA.ready
      yield* onB.ready

      const perHub = 40
      const publishFrom = (hub: TestHub, name: string) =>
        Effect.forEach(
          range(1, perHub),
          (i) =>
            i % 4 === 0
              ? busOf(hub).publishStreamed(id, [delta(`${name}${i}`)])
              : i % 4 === 1
                ? busOf(hub).publishAll(id, [progress(`${name}${i}`), progress(`${name}${i}+`)])
                : busOf(hub).publish(id, progress(`${name}${i}`)),
          { discard: true }
        )
      yield* Effect.all([publishFrom(a, "a"), publishFrom(b, "b")], { concurrency: "unbounded", discard: true })
      const total = perHub * 2 + perHub / 2

      const seenA = yield* liveAfterReady(onA, total)
      const seenB = yield* liveAfterReady(onB, total)
      for (const seen of [seenA, seenB]) {
        assert.deepStrictEqual(seqsOf(seen.items), range(seen.head + 1, seen.head + total), "contiguous seqs, no duplicates")
        const marks = marksOf(seen.items)
        assert.strictEqual(new Set(marks).size, total, "every event once")
        // Each hub's own events keep the order it published them in.
        for (const name of ["a", "b"]) {
          const own = marks.filter((m) => m.startsWith(name)).map((m) => Number(m.slice(1).replace("+", ".5")))
          assert.deepStrictEqual(
            own,
            [...own].sort((x, y) => x - y)
          )
        }
      }
      assert.deepStrictEqual(marksOf(seenA.items), marksOf(seenB.items), "both hubs deliver the same order")
      assert.strictEqual(seenA.head, seenB.head)

      // The last seq is the shared one on both hubs.
      const last = seenA.head + total
      assert.strictEqual(yield* busOf(a).lastSeq(id), last)
      assert.strictEqual(yield* busOf(b).lastSeq(id), last)

      // A subscriber on B resuming from the middle gets what both hubs published, then live events from A.
      const since = seenA.head + 10
      const resumed = yield* record(clientB, id, since)
      yield* resumed.ready
      yield* busOf(a).publish(id, progress("after"))
      const replayed = yield* resumed.reached(last + 1)
      assert.deepStrictEqual(seqsOf(replayed), range(since + 1, last + 1))
      assert.deepStrictEqual(marksOf(replayed), [...marksOf(seenA.items).slice(10), "after"])
      const readyAt = replayed.findIndex((i) => i._tag === "Ready")
      assert.deepStrictEqual(replayed[readyAt], { _tag: "Ready", seq: last })
    })
  )

  it.scopedLive("a hub that lost its LISTEN connection catches up on its next publish, in seq order", () =>
    Effect.gen(function* () {
      const { a, b } = yield* twoHubs
      const clientB = yield* b.tcpClient()
      const project = yield* clientB.project.create({ name: "deaf", description: "" })
      const id = project.id as ProjectId
      const onB = yield* record(clientB, id)
      const ready = yield* onB.ready
      const head = ready._tag === "Ready" ? ready.seq : -1

      // Every hub's listening connection to this database goes away.
      const root = Context.get(a.context, RootDb)
      const killed = yield* root<{ readonly n: number }>`SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
        WHERE datname = current_database() AND query LIKE 'LISTEN %'`
      assert.isAtLeast(Number(killed[0]?.n ?? 0), 1)
      yield* pollUntil(
        "the listening connections to end",
        Effect.map(
          root<{ readonly n: number }>`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'`.pipe(
            Effect.orDie
          ),
          (rows) => Number(rows[0]?.n ?? 0) === 0 || undefined
        )
      )

      yield* busOf(a).publishAll(id, [progress("a1"), progress("a2")])
      yield* busOf(b).publish(id, progress("b1"))
      const items = yield* onB.reached(head + 3)
      assert.deepStrictEqual(seqsOf(items), range(head + 1, head + 3))
      assert.deepStrictEqual(marksOf(items), ["a1", "a2", "b1"])
    })
  )

  it.scopedLive("deleting a project on one hub ends its subscriptions on the other after ProjectDeleted", () =>
    Effect.gen(function* () {
      const { a, b } = yield* twoHubs
      const clientA = yield* a.tcpClient()
      const clientB = yield* b.tcpClient()
      const project = yield* clientA.project.create({ name: "doomed", description: "" })
      const id = project.id as ProjectId
      const onB = yield* record(clientB, id)
      yield* onB.ready
      yield* busOf(a).publish(id, progress("last words"))
      yield* clientA.project.delete({ projectId: id, confirm: "doomed" })
      yield* onB.ended.pipe(Effect.timeout("20 seconds"))
      const marks = marksOf(yield* onB.items)
      assert.deepStrictEqual(marks.slice(-2), ["last words", "ProjectDeleted"])
    })
  )
})
