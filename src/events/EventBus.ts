import { Chunk, Effect, Stream } from "effect"
import { ServerConfig } from "../config/ServerConfig.js"
import { DomainEvent, type EventBody, type SubscriptionItem } from "../domain/Event.js"
import type { ProjectId } from "../domain/Ids.js"

/**
 * A rough size in bytes of a value's JSON form, without building it: strings count their length,
 * other scalars a few bytes. It only has to be proportional, so that a subscriber's backlog can be
 * bounded by memory as well as by count.
 */
export const estimateBytes = (value: unknown, depth = 0): number => {
  switch (typeof value) {
    case "string":
      return value.length + 2
    case "number":
    case "bigint":
      return 8
    case "boolean":
      return 5
    case "object": {
      if (value === null) return 4
      if (depth > 32) return 16
      let total = 2
      if (Array.isArray(value)) {
        for (const item of value) total += estimateBytes(item, depth + 1) + 1
      } else {
        for (const key in value) total += key.length + 4 + estimateBytes((value as Record<string, unknown>)[key], depth + 1)
      }
      return total
    }
    default:
      return 0
  }
}

interface Subscriber {
  readonly filter: (e: DomainEvent) => boolean
  /** Pending events and their estimated sizes, oldest first from `head` (entries before it are cleared). */
  events: Array<DomainEvent | undefined>
  sizes: Array<number>
  head: number
  bytes: number
  /** Events dropped (oldest first) since the subscriber last took its backlog. */
  missed: number
  /** Open while the backlog is not empty (or the bus has shut down). */
  readonly ready: Effect.Latch
}

/**
 * The only way state changes reach clients. Services `publish`; transports `subscribe`. Each
 * subscriber has its own backlog, bounded by count (`eventBuffer`) and by estimated bytes
 * (`subscriberBufferBytes`): a subscriber that falls further behind loses its oldest events and is
 * told how many (`Lagged`), so a client that never reads cannot grow the hub's memory.
 */
export class EventBus extends Effect.Service<EventBus>()("kiris/EventBus", {
  scoped: Effect.gen(function* () {
    const config = yield* ServerConfig
    const maxEvents = Math.max(1, config.eventBuffer)
    const maxBytes = Math.max(1, config.subscriberBufferBytes)
    const subscribers = new Set<Subscriber>()
    let seq = 0
    let shutDown = false

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        shutDown = true
        for (const sub of subscribers) sub.ready.unsafeOpen()
        subscribers.clear()
      })
    )

    const dropOldest = (sub: Subscriber) => {
      sub.bytes -= sub.sizes[sub.head] ?? 0
      sub.events[sub.head] = undefined
      sub.head++
      sub.missed++
    }

    const deliver = (sub: Subscriber, event: DomainEvent, size: number) => {
      sub.events.push(event)
      sub.sizes.push(size)
      sub.bytes += size
      while (sub.events.length - sub.head > 1 && (sub.events.length - sub.head > maxEvents || sub.bytes > maxBytes)) dropOldest(sub)
      if (sub.head >= 1024 && sub.head * 2 > sub.events.length) {
        sub.events = sub.events.slice(sub.head)
        sub.sizes = sub.sizes.slice(sub.head)
        sub.head = 0
      }
      sub.ready.unsafeOpen()
    }

    /** Numbers and delivers in one synchronous step, so `seq` order is delivery order for every subscriber. */
    const publishAll = (projectId: ProjectId, bodies: ReadonlyArray<EventBody>): Effect.Effect<void> =>
      bodies.length === 0
        ? Effect.void
        : Effect.sync(() => {
            const at = Date.now()
            for (const event of bodies) {
              const e = DomainEvent.make({ seq: ++seq, projectId, at, event }, true)
              let size = -1
              for (const sub of subscribers) {
                if (!sub.filter(e)) continue
                if (size < 0) size = estimateBytes(event) + 64
                deliver(sub, e, size)
              }
            }
          })

    const publish = (projectId: ProjectId, body: EventBody) => publishAll(projectId, [body])

    /** Takes up to `max` events, preceded by `Lagged` when some were dropped since the last take. */
    const take = (sub: Subscriber, max: number): Chunk.Chunk<SubscriptionItem> => {
      const out: Array<SubscriptionItem> = []
      if (sub.missed > 0) {
        out.push({ _tag: "Lagged", missed: sub.missed })
        sub.missed = 0
      }
      const end = Math.min(sub.events.length, sub.head + max)
      for (let i = sub.head; i < end; i++) out.push({ _tag: "Event", event: sub.events[i]! })
      if (end === sub.events.length) {
        sub.events = []
        sub.sizes = []
        sub.head = 0
        sub.bytes = 0
        if (!shutDown) sub.ready.unsafeClose()
      } else {
        for (let i = sub.head; i < end; i++) {
          sub.bytes -= sub.sizes[i]!
          sub.events[i] = undefined
        }
        sub.head = end
      }
      return Chunk.unsafeFromArray(out)
    }

    /**
     * Subscribes now, in the caller's scope, and returns the stream: `Ready` first, then the events
     * that pass `filter`, with `Lagged` wherever the backlog overflowed.
     */
    const subscribe = (filter: (e: DomainEvent) => boolean) =>
      Effect.gen(function* () {
        const sub: Subscriber = { filter, events: [], sizes: [], head: 0, bytes: 0, missed: 0, ready: yield* Effect.makeLatch(false) }
        const readySeq = yield* Effect.acquireRelease(
          Effect.sync(() => {
            subscribers.add(sub)
            return seq
          }),
          () => Effect.sync(() => subscribers.delete(sub))
        )
        const items = Stream.repeatEffectChunk(
          Effect.zipRight(
            sub.ready.await,
            Effect.suspend(() => (shutDown ? Effect.interrupt : Effect.succeed(take(sub, 256))))
          )
        )
        return Stream.concat(Stream.succeed<SubscriptionItem>({ _tag: "Ready", seq: readySeq }), items)
      })

    const subscribeProject = (projectId: ProjectId) => subscribe((e) => e.projectId === projectId)

    return { publish, publishAll, subscribe, subscribeProject, currentSeq: Effect.sync(() => seq) } as const
  })
}) {}
