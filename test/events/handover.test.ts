import { assert, describe, it } from "@effect/vitest"
import { Chunk, Context, Deferred, Effect, Fiber, Option, Stream } from "effect"
import type { SubscriptionItem } from "../../src/domain/Event.js"
import type { ProjectId, TaskId } from "../../src/domain/Ids.js"
import { EventBus } from "../../src/events/EventBus.js"
import { startHub } from "../support/Hub.js"
import { transports } from "../support/AgentHub.js"
import { backendConfig, backends } from "../support/Pg.js"
import { range, record, seqsOf } from "./support.js"

const PRODUCERS = 8

const progress = (i: number) => ({ _tag: "TaskProgress", taskId: "tsk_handover" as TaskId, parts: [`p${i}`] }) as const

describe.each(backends)("on %s", (backend) => {
  for (const transport of transports) {
    describe(`hand-over from replay to live over ${transport}`, () => {
      it.scopedLive("a subscriber joining with since while many producers publish sees exactly contiguous seqs", () =>
        Effect.gen(function* () {
          const hub = yield* startHub(yield* backendConfig(backend))
          const admin = yield* hub.tcpClient()
          const project = yield* admin.project.create({ name: "handover", description: "" })
          const projectId = project.id as ProjectId
          const bus = Context.get(hub.context, EventBus)
          const since = yield* bus.lastSeq(projectId)

          const client = transport === "tcp" ? yield* hub.tcpClient() : yield* hub.wsClient()
          yield* client.user.whoami()
          const started = yield* Deferred.make<void>()
          let stopped = false
          let published = 0
          const producer = Effect.whileLoop({
            while: () => !stopped,
            body: () =>
              bus.publish(projectId, progress(published++)).pipe(
                Effect.zipRight(published >= 200 ? Deferred.succeed(started, undefined) : Effect.void),
                // paced on the clock, so that the hub's sockets get their turn between publishes
                Effect.zipRight(Effect.sleep("1 millis"))
              ),
            step: () => undefined
          })
          const producers = yield* Effect.forEach(range(1, PRODUCERS), () => Effect.fork(producer))
          // Join mid-flight: part of what it needs is in the log, the rest still being published.
          yield* Deferred.await(started)
          const sub = yield* record(client, project.id, since)
          // Producers go on until the subscriber is live and has received events published after it joined.
          yield* sub.until((l) => {
            const at = l.findIndex((i) => i._tag === "Ready")
            return (at >= 0 && l.length - at > 300) || l.some((i) => i._tag === "Lagged") ? true : undefined
          })
          stopped = true
          yield* Fiber.joinAll(producers)
          const last = yield* bus.lastSeq(projectId)
          assert.strictEqual(last, since + published)
          const items = yield* sub.reached(last)
          assert.deepStrictEqual(seqsOf(items), range(since + 1, last))
          assert.isFalse(items.some((i) => i._tag === "Lagged" || i._tag === "Reset"))
          const ready = items.find((i) => i._tag === "Ready")
          assert.isTrue(
            ready !== undefined && ready._tag === "Ready" && ready.seq >= since + 200 && ready.seq <= last - 300,
            "replayed and live events both"
          )
        })
      )
    })
  }

  describe("a subscriber that falls behind", () => {
    it.scopedLive("gets Lagged with the last seq it was sent, its stream ends, and since resumes it without a loss", () =>
      Effect.gen(function* () {
        const hub = yield* startHub({ eventBuffer: 50, ...(yield* backendConfig(backend)) })
        const admin = yield* hub.tcpClient()
        const project = yield* admin.project.create({ name: "lagged", description: "" })
        const projectId = project.id as ProjectId
        const bus = Context.get(hub.context, EventBus)

        const stream = yield* bus.subscribeProject(projectId, Option.some(yield* bus.lastSeq(projectId)))
        const pull = yield* Stream.toPull(stream)
        const taken: Array<SubscriptionItem> = []
        yield* Effect.forEach(range(1, 5), (i) => bus.publish(projectId, progress(i)), { discard: true })
        while (!taken.some((i) => i._tag === "Event" && i.event.event._tag === "TaskProgress" && i.event.event.parts[0] === "p5")) {
          taken.push(...Chunk.toReadonlyArray(yield* pull))
        }
        const lastSent = Math.max(...taken.flatMap((i) => (i._tag === "Event" ? [i.event.seq] : [])))

        // 200 more while it reads nothing: its backlog holds 50.
        yield* Effect.forEach(range(6, 205), (i) => bus.publish(projectId, progress(i)), { discard: true })
        const rest: Array<SubscriptionItem> = []
        const end = yield* Effect.either(
          Effect.forever(
            Effect.sync(() => undefined).pipe(
              Effect.zipRight(pull),
              Effect.map((c) => rest.push(...Chunk.toReadonlyArray(c)))
            )
          )
        )
        assert.isTrue(end._tag === "Left" && Option.isNone(end.left), "the stream ended")
        assert.deepStrictEqual(rest, [{ _tag: "Lagged", missed: 200, lastSeq: lastSent }])

        // Resuming from lastSeq over the wire gives all 200, in order.
        const sub = yield* record(admin, project.id, lastSent)
        const items = yield* sub.ready.pipe(Effect.zipRight(sub.items))
        assert.deepStrictEqual(seqsOf(items), range(lastSent + 1, lastSent + 200))
        assert.strictEqual(items.at(-1)?._tag, "Ready")
      })
    )
  })
})
