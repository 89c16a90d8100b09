import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Option, Scope } from "effect"
import type { DomainEvent } from "../../src/domain/Event.js"
import { EnqueueTask } from "../../src/domain/Task.js"
import type { ProjectId, SessionId } from "../../src/domain/Ids.js"
import { EventBus } from "../../src/events/EventBus.js"
import { fakeOpenAI } from "../support/FakeOpenAI.js"
import { type TestHub, tempDir } from "../support/Hub.js"
import { startAgentHub, type Transport, transports, watchProject } from "../support/AgentHub.js"
import { backendConfig, backends } from "../support/Pg.js"
import { eventsOf, range, record, seqsOf, summary } from "./support.js"

const connect = (hub: TestHub, transport: Transport) => (transport === "tcp" ? hub.tcpClient() : hub.wsClient())

/**
 * Whether `events` (live, after seq `from`) hold every seq up to their last but those of streaming
 * deltas merged into a later one: a merged delta carries the last seq it covers.
 */
const everySeqButMergedDeltas = (events: ReadonlyArray<DomainEvent>, from: number) =>
  events.every((e, i) => {
    const before = i === 0 ? from : events[i - 1]!.seq
    return e.seq === before + 1 || (e.seq > before + 1 && e.event._tag === "PartDelta")
  })
const notDelta = (e: DomainEvent) => e.event._tag !== "PartDelta"
const deltaText = (events: ReadonlyArray<DomainEvent>) => events.map((e) => (e.event._tag === "PartDelta" ? e.event.delta : "")).join("")

/** Runs `effect` in a scope of its own that is closed right after (a client that disconnects, a hub that stops). */
const scoped = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const value = yield* Scope.extend(effect, scope)
    return { value, close: Scope.close(scope, Exit.void) }
  })

describe.each(backends)("on %s", (backend) => {
  for (const transport of transports) {
    describe(`resuming events over ${transport}`, () => {
      it.scopedLive("a client that reconnects with since gets exactly what it missed, then live events, also after a hub restart", () =>
        Effect.gen(function* () {
          const fake = yield* fakeOpenAI
          const dataDir = tempDir()
          const store = yield* backendConfig(backend)
          const first = yield* scoped(startAgentHub(fake, { dataDir, ...store }))
          const hub = first.value
          // Everything on the first hub runs in a scope closed before it stops (no stream left open).
          const firstRun = yield* scoped(
            Effect.gen(function* () {
              const admin = yield* hub.tcpClient()
              const project = yield* admin.project.create({ name: "resume", description: "" })
              const session = yield* admin.session.create({ projectId: project.id })

              // A subscriber sees seq N, then goes away.
              const away = yield* scoped(
                Effect.gen(function* () {
                  const client = yield* connect(hub, transport)
                  const sub = yield* record(client, project.id)
                  yield* sub.ready
                  yield* admin.session.rename({ projectId: project.id, sessionId: session.id, title: "before" })
                  return yield* sub.until((items) => eventsOf(items).find((e) => e.event._tag === "SessionUpdated"))
                })
              )
              const n = away.value.seq
              yield* away.close

              // Meanwhile: a streamed agent turn and task transitions, watched by another client.
              const watch = yield* watchProject(admin, project.id)
              // paced, so that the turn's deltas are not merged into a few events
              fake.script({ slow: { text: Array.from({ length: 40 }, (_, i) => `w${i}`).join(" "), delayMs: 2 } })
              yield* admin.session.prompt({ projectId: project.id, sessionId: session.id, text: "talk" })
              const tasks = yield* Effect.forEach(range(1, 40), (i) =>
                admin.task.enqueue(EnqueueTask.make({ projectId: project.id, kind: "noop", payload: { i } }))
              )
              yield* Effect.forEach(tasks, (t) => admin.task.cancel({ taskId: t.id }), { discard: true })
              yield* watch.turns(session.id as SessionId)
              const cancelled = new Set(tasks.map((t) => t.id))
              yield* watch.until((events) => {
                for (const e of events)
                  if (e.event._tag === "TasksChanged") for (const t of e.event.tasks) if (t.status === "cancelled") cancelled.delete(t.id)
                return cancelled.size === 0 ? true : undefined
              })
              const missed = (yield* watch.events).filter((e) => e.seq > n)
              const last = missed[missed.length - 1]!.seq
              assert.isAtLeast(missed.length, 100, "the turn and the tasks published many events")
              assert.isTrue(everySeqButMergedDeltas(missed, n), "the live subscriber saw every seq (deltas it was behind on come merged)")
              assert.isTrue(missed.some((e) => e.event._tag === "PartDelta") && missed.some((e) => e.event._tag === "TasksChanged"))

              // Back with since N: the missed events in order, Ready, then live ones.
              const back = yield* scoped(
                Effect.gen(function* () {
                  const client = yield* connect(hub, transport)
                  const sub = yield* record(client, project.id, n)
                  const ready = yield* sub.ready
                  yield* admin.session.rename({ projectId: project.id, sessionId: session.id, title: "after" })
                  return { ready, items: yield* sub.reached(last + 1) }
                })
              )
              const items = back.value.items
              assert.strictEqual(back.value.ready._tag === "Ready" && back.value.ready.seq, last)
              const readyAt = items.findIndex((i) => i._tag === "Ready")
              const replayed = eventsOf(items.slice(0, readyAt))
              assert.deepStrictEqual(
                replayed.filter(notDelta).map(summary),
                missed.filter(notDelta).map(summary),
                "the replay is what the live subscriber saw"
              )
              assert.strictEqual(deltaText(replayed), deltaText(missed), "with the same streamed text")
              assert.deepStrictEqual(seqsOf(items), range(n + 1, last + 1), "no gap and no duplicate across the hand-over")
              assert.isFalse(items.some((i) => i._tag === "Reset" || i._tag === "Lagged"))
              yield* back.close
              return { project, session, n, last, replayed }
            })
          )
          const { project, session, n, last, replayed } = firstRun.value
          yield* firstRun.close

          // A restart changes nothing: the same replay, and numbering goes on.
          yield* first.close
          const restarted = yield* startAgentHub(fake, { dataDir, ...store })
          const client = yield* connect(restarted, transport)
          const again = yield* record(client, project.id, n)
          const ready = yield* again.ready
          assert.strictEqual(ready._tag === "Ready" && ready.seq, last + 1)
          const admin2 = yield* restarted.tcpClient()
          yield* admin2.session.rename({ projectId: project.id, sessionId: session.id, title: "restarted" })
          const afterRestart = yield* again.reached(last + 2)
          assert.deepStrictEqual(seqsOf(afterRestart), range(n + 1, last + 2))
          assert.deepStrictEqual(eventsOf(afterRestart).slice(0, replayed.length).map(summary), replayed.map(summary))
          const latest = eventsOf(afterRestart).at(-1)!
          assert.isTrue(latest.event._tag === "SessionUpdated" && latest.event.session.title === "restarted")
        })
      )

      it.scopedLive("a since older than the retained log starts with Reset, then the oldest kept events", () =>
        Effect.gen(function* () {
          const fake = yield* fakeOpenAI
          const hub = yield* startAgentHub(fake, { eventRetentionCount: 10, ...(yield* backendConfig(backend)) })
          const admin = yield* hub.tcpClient()
          const project = yield* admin.project.create({ name: "pruned", description: "" })
          const session = yield* admin.session.create({ projectId: project.id })
          yield* Effect.forEach(range(1, 30), (i) => admin.session.rename({ projectId: project.id, sessionId: session.id, title: `t${i}` }), {
            discard: true
          })
          const bus = Context.get(hub.context, EventBus)
          const last = yield* bus.lastSeq(project.id as ProjectId)
          assert.isAtLeast(last, 31)
          assert.isAbove(yield* bus.prune(project.id as ProjectId), 0)

          const client = yield* connect(hub, transport)
          const sub = yield* record(client, project.id, 1)
          yield* sub.ready
          const items = yield* sub.items
          assert.deepStrictEqual(items[0], { _tag: "Reset", oldestSeq: last - 9 })
          assert.deepStrictEqual(seqsOf(items), range(last - 9, last))
          assert.strictEqual(items.at(-1)?._tag, "Ready")

          // Within the retained log, no Reset.
          const kept = yield* record(client, project.id, last - 5)
          yield* kept.ready
          const keptItems = yield* kept.items
          assert.strictEqual(keptItems[0]?._tag, "Event")
          assert.deepStrictEqual(seqsOf(keptItems), range(last - 4, last))

          // Without since: live from now, as before.
          const live = yield* record(client, project.id)
          assert.deepStrictEqual(yield* live.ready, { _tag: "Ready", seq: last })
          assert.isTrue(Option.isNone(Option.fromNullable((yield* live.items).find((i) => i._tag === "Event"))))
        })
      )
    })
  }
})
