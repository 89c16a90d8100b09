import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Stream } from "effect"
import type { ProjectId, SessionId } from "../../src/domain/Ids.js"
import { fakeOpenAI } from "../support/FakeOpenAI.js"
import { rawWebSocket, request, type ServerMessage } from "../support/RawRpc.js"
import { watchedSession } from "../support/AgentHub.js"
import { backends } from "../support/Pg.js"
import { eventsOf, record } from "./support.js"

/** `n` words, each a chunk of the model's answer (the fake sends one chunk per word). */
const words = (n: number) => Array.from({ length: n }, (_, i) => `${i === 0 ? "" : " "}w${i}`)

interface RawEvent {
  readonly seq: number
  readonly event: { readonly _tag: string; readonly delta?: string; readonly message?: { readonly role: string; readonly status: string } }
}

/** The events in a raw `Chunk` of a subscription (other items — Ready, presence — left out). */
const eventsIn = (chunk: ServerMessage): ReadonlyArray<RawEvent> =>
  ((chunk["values"] ?? []) as ReadonlyArray<{ readonly _tag: string; readonly event?: RawEvent }>).flatMap((item) =>
    item._tag === "Event" && item.event !== undefined ? [item.event] : []
  )

/** Fails `effect` after `ms` of real time (the test's own clock may be stopped). */
const deadline = <A, E, R>(ms: number, what: string, effect: Effect.Effect<A, E, R>) =>
  Effect.raceFirst(
    effect,
    Effect.flatMap(
      Effect.async<void>((resume) => {
        const timer = setTimeout(() => resume(Effect.void), ms)
        return Effect.sync(() => clearTimeout(timer))
      }),
      () => Effect.dieMessage(`timed out waiting for ${what}`)
    )
  )

describe.each(backends)("streaming deltas to subscribers on %s", (backend) => {
  // The hub runs on the test's stopped clock: no timer of the hub ever fires, so a delta that
  // waited for one (a grouping window) would never reach the subscriber.
  it.scoped("a subscriber that keeps up gets every model delta as its own event, no timer involved", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const { client, project, session, watch } = yield* watchedSession(fake, backend, "deltas")

      // The model sends chunk k only once this subscriber has all the text of the chunks before it.
      const chunks = words(24)
      const received: Array<string> = []
      let receivedLength = 0
      const waiters: Array<{ readonly length: number; readonly resolve: () => void }> = []
      const wake = () => {
        for (let i = waiters.length - 1; i >= 0; i--) {
          if (receivedLength >= waiters[i]!.length) waiters.splice(i, 1)[0]!.resolve()
        }
      }
      const pace = (index: number) =>
        new Promise<void>((resolve) => {
          waiters.push({ length: chunks.slice(0, index).join("").length, resolve })
          wake()
        })
      const ready = yield* Deferred.make<void>()
      yield* client.events.subscribe({ projectId: project.id }).pipe(
        Stream.runForEach((item) =>
          Effect.sync(() => {
            if (item._tag === "Ready") Deferred.unsafeDone(ready, Effect.void)
            if (item._tag !== "Event" || item.event.event._tag !== "PartDelta") return
            received.push(item.event.event.delta)
            receivedLength += item.event.event.delta.length
            wake()
          })
        ),
        Effect.forkScoped
      )
      yield* Deferred.await(ready)

      fake.script({ slow: { text: chunks.join(""), delayMs: 0, pace } })
      yield* client.session.prompt({ projectId: project.id, sessionId: session.id as SessionId, text: "count" })
      yield* deadline(
        20_000,
        "the last delta",
        Effect.promise(() => pace(chunks.length))
      )
      assert.deepStrictEqual(received, chunks)
      const [done] = yield* deadline(20_000, "the finished turn", watch.turns(session.id))
      assert.strictEqual(done?.status, "completed")
    })
  )

  it.scopedLive("a subscriber that does not read gets the deltas merged, nothing lost, in order; the log keeps every delta", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const { hub, client, project, session, watch } = yield* watchedSession(fake, backend, "slow")

      // A raw client that acks nothing until told: the hub sends it nothing after its first chunk.
      const slow = yield* rawWebSocket(hub.wsUrl, { ack: false })
      yield* slow.send(request("1", "events.subscribe", { projectId: project.id as ProjectId }, hub.adminKey))
      const first = yield* slow.next("the first chunk", (m) => m._tag === "Chunk")

      const chunks = words(300)
      fake.script({ slow: { text: chunks.join(""), delayMs: 0 } })
      yield* client.session.prompt({ projectId: project.id, sessionId: session.id as SessionId, text: "count" })
      const [done] = yield* watch.turns(session.id)
      assert.strictEqual(done?.status, "completed")
      const live = (yield* watch.events).filter((e) => e.event._tag === "PartDelta")
      assert.strictEqual(live.map((e) => (e.event._tag === "PartDelta" ? e.event.delta : "")).join(""), chunks.join(""))

      // Now the slow client reads everything, acking chunk after chunk, up to the finished message.
      const events: Array<RawEvent> = [...eventsIn(first)]
      let finished = false
      while (!finished) {
        yield* slow.send({ _tag: "Ack", requestId: "1" })
        const chunk = yield* slow.next("a chunk", (m) => m._tag === "Chunk" || m._tag === "Exit")
        assert.strictEqual(chunk._tag, "Chunk", `the subscription ended: ${JSON.stringify(chunk)}`)
        for (const item of (chunk["values"] ?? []) as ReadonlyArray<{ readonly _tag: string }>) assert.notStrictEqual(item._tag, "Lagged")
        const got = eventsIn(chunk)
        events.push(...got)
        finished = got.some(
          (e) => e.event._tag === "MessageUpdated" && e.event.message?.role === "assistant" && e.event.message.status === "completed"
        )
      }
      const deltas = events.filter((e) => e.event._tag === "PartDelta")
      assert.strictEqual(deltas.map((e) => e.event.delta).join(""), chunks.join(""))
      assert.isBelow(deltas.length, chunks.length, "waiting deltas were merged")
      const seqs = events.map((e) => e.seq)
      assert.deepStrictEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
        "in order"
      )
      assert.strictEqual(new Set(seqs).size, seqs.length, "no event twice")
      // The merged deltas carry the last seq they cover: the last one is the live client's last delta.
      assert.strictEqual(deltas[deltas.length - 1]?.seq, live[live.length - 1]?.seq)

      // The log holds every model delta as its own event: a resume from the middle of them misses nothing.
      const replay = yield* record(client, project.id, 0)
      const all = eventsOf(yield* replay.until((items) => (items.some((i) => i._tag === "Ready") ? items : undefined)))
      const logged = all.filter((e) => e.event._tag === "PartDelta")
      assert.deepStrictEqual(
        logged.map((e) => (e.event._tag === "PartDelta" ? e.event.delta : "")),
        chunks
      )
      const middle = logged[99]!.seq
      const resumed = yield* record(client, project.id, middle)
      const after = eventsOf(yield* resumed.until((items) => (items.some((i) => i._tag === "Ready") ? items : undefined)))
      assert.strictEqual(after.flatMap((e) => (e.event._tag === "PartDelta" ? [e.event.delta] : [])).join(""), chunks.slice(100).join(""))
    })
  )
})
