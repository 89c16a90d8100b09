import { Chunk, Effect, PubSub, Ref, Stream } from "effect"
import { ServerConfig } from "../config/ServerConfig.js"
import { DomainEvent, type EventBody, type SubscriptionItem } from "../domain/Event.js"
import type { ProjectId } from "../domain/Ids.js"

/**
 * The only way state changes reach clients. Services `publish`; transports `subscribe`. The PubSub
 * is sliding with a bounded buffer, so a slow subscriber cannot grow memory; since `seq` is
 * contiguous across the hub, a subscriber detects what it lost and is told (`Lagged`).
 */
export class EventBus extends Effect.Service<EventBus>()("kiris/EventBus", {
  scoped: Effect.gen(function* () {
    const config = yield* ServerConfig
    const pubsub = yield* Effect.acquireRelease(PubSub.sliding<DomainEvent>(config.eventBuffer), PubSub.shutdown)
    const seq = yield* Ref.make(0)
    const lock = yield* Effect.makeSemaphore(1)

    const publishAll = (projectId: ProjectId, bodies: ReadonlyArray<EventBody>): Effect.Effect<void> =>
      bodies.length === 0
        ? Effect.void
        : lock.withPermits(1)(
            Effect.flatMap(Ref.getAndUpdate(seq, (n) => n + bodies.length), (first) => {
              const at = Date.now()
              return PubSub.publishAll(
                pubsub,
                bodies.map((event, i) => DomainEvent.make({ seq: first + i + 1, projectId, at, event }, true))
              )
            })
          ).pipe(Effect.asVoid)

    const publish = (projectId: ProjectId, body: EventBody) => publishAll(projectId, [body])

    /**
     * Subscribes now, in the caller's scope, and returns the stream: `Ready` first, then the events
     * that pass `filter`, with `Lagged` wherever the buffer overflowed.
     */
    const subscribe = (filter: (e: DomainEvent) => boolean) =>
      Effect.gen(function* () {
        const dequeue = yield* PubSub.subscribe(pubsub)
        const readySeq = yield* Ref.get(seq)
        let expected = readySeq + 1
        const items = Stream.fromQueue(dequeue, { maxChunkSize: 256 }).pipe(
          Stream.mapChunks((chunk) => {
            const out: Array<SubscriptionItem> = []
            for (const e of chunk) {
              if (e.seq < expected) continue
              if (e.seq > expected) out.push({ _tag: "Lagged", missed: e.seq - expected })
              expected = e.seq + 1
              if (filter(e)) out.push({ _tag: "Event", event: e })
            }
            return Chunk.unsafeFromArray(out)
          })
        )
        return Stream.concat(Stream.succeed<SubscriptionItem>({ _tag: "Ready", seq: readySeq }), items)
      })

    const subscribeProject = (projectId: ProjectId) => subscribe((e) => e.projectId === projectId)

    return { publish, publishAll, subscribe, subscribeProject, currentSeq: Ref.get(seq) } as const
  })
}) {}
