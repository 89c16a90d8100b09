import { Chunk, Effect, Option, Stream } from "effect"
import { DomainEvent, type SubscriptionItem } from "../domain/Event.js"
import type { ProjectId } from "../domain/Ids.js"
import * as K from "../transport/metrics/KirisMetrics.js"

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

export interface Subscriber {
  readonly filter: (e: DomainEvent) => boolean
  /** The one project whose events `filter` passes, when it is a project's subscription. */
  readonly projectId: ProjectId | undefined
  /** Pending events and their estimated sizes, oldest first from `head` (entries before it are cleared). */
  events: Array<DomainEvent | undefined>
  sizes: Array<number>
  head: number
  bytes: number
  /** Events dropped (oldest first) because the backlog was full. */
  missed: number
  /** Open while the backlog is not empty (or the bus has shut down). */
  readonly ready: Effect.Latch
}

/** Where a subscriber's stream stands: the last seq it was sent, and whether events up to it are skipped (already replayed). */
export interface Cursor {
  lastSent: number
  readonly skipSent: boolean
}

export interface BacklogLimits {
  /** Events a subscriber's backlog holds at most (the newest event is always kept). */
  readonly maxEvents: number
  /** Estimated bytes a subscriber's backlog holds at most. */
  readonly maxBytes: number
}

/**
 * `waiting` and `next` as one event, when `next` is the delta right after `waiting` (the project's
 * next seq) to the same part: the merged event carries `next`'s seq and time and both texts, so a
 * subscriber resuming after its seq misses nothing and repeats nothing. `delta`: the bytes added.
 */
const mergeDeltas = (waiting: DomainEvent, next: DomainEvent): { readonly event: DomainEvent; readonly delta: number } | undefined => {
  const a = waiting.event
  const b = next.event
  if (
    a._tag !== "PartDelta" ||
    b._tag !== "PartDelta" ||
    a.partId !== b.partId ||
    next.seq !== waiting.seq + 1 ||
    next.projectId !== waiting.projectId
  ) {
    return undefined
  }
  return {
    event: DomainEvent.make({ seq: next.seq, projectId: next.projectId, at: next.at, event: { ...a, delta: a.delta + b.delta } }, true),
    delta: b.delta.length
  }
}

/** Events a subscriber takes from its backlog at once. */
const TAKE = 256

const clear = (sub: Subscriber) => {
  sub.events = []
  sub.sizes = []
  sub.head = 0
  sub.bytes = 0
}

const dropOldest = (sub: Subscriber) => {
  sub.bytes -= sub.sizes[sub.head] ?? 0
  sub.events[sub.head] = undefined
  sub.head++
  sub.missed++
}

/**
 * The bus's live subscribers, each with its own backlog bounded by count and by estimated bytes:
 * when a backlog overflows its oldest events are dropped and counted, and the subscriber's stream
 * ends with `Lagged`. After `shutdown` every subscriber's stream is interrupted.
 *
 * A subscriber that keeps up gets every event as it was published, at once. Only while events wait
 * in its backlog (its client is behind) does a streaming delta join the waiting delta before it
 * (same part, consecutive seqs), so a slow client gets fewer, longer deltas with nothing lost.
 */
export const makeSubscribers = (limits: BacklogLimits) => {
  const all = new Set<Subscriber>()
  let shutDown = false

  /** A subscriber (not yet added) to the events `filter` passes; `projectId` when they are all of that project. */
  const make = (filter: (e: DomainEvent) => boolean, projectId?: ProjectId): Effect.Effect<Subscriber> =>
    Effect.map(Effect.makeLatch(false), (ready) => ({ filter, projectId, events: [], sizes: [], head: 0, bytes: 0, missed: 0, ready }))

  const add = (sub: Subscriber) => {
    all.add(sub)
  }

  const remove = (sub: Subscriber) => {
    all.delete(sub)
  }

  const deliver = (sub: Subscriber, event: DomainEvent, size: number) => {
    const tail = sub.events.length - 1
    const merged = tail >= sub.head ? mergeDeltas(sub.events[tail]!, event) : undefined
    if (merged !== undefined) {
      // Still waiting for its subscriber: the next delta of the same part joins it.
      const added = merged.delta
      sub.events[tail] = merged.event
      sub.sizes[tail] = sub.sizes[tail]! + added
      sub.bytes += added
    } else {
      sub.events.push(event)
      sub.sizes.push(size)
      sub.bytes += size
    }
    while (sub.events.length - sub.head > 1 && (sub.events.length - sub.head > limits.maxEvents || sub.bytes > limits.maxBytes)) dropOldest(sub)
    if (sub.head >= 1024 && sub.head * 2 > sub.events.length) {
      sub.events = sub.events.slice(sub.head)
      sub.sizes = sub.sizes.slice(sub.head)
      sub.head = 0
    }
    sub.ready.unsafeOpen()
  }

  /** Appends `events` to the backlog of every subscriber whose filter passes them. */
  const deliverAll = (events: ReadonlyArray<DomainEvent>) => {
    for (const e of events) {
      let size = -1
      for (const sub of all) {
        if (!sub.filter(e)) continue
        if (size < 0) size = estimateBytes(e.event) + 64
        deliver(sub, e, size)
      }
    }
  }

  /**
   * The subscriber's live items: its backlog's events after `lastSent` (earlier ones were
   * replayed), in chunks; when its backlog overflowed, `Lagged` with the last seq sent, and the end.
   */
  const liveItems = (sub: Subscriber, cursor: Cursor): Stream.Stream<SubscriptionItem> => {
    let ended = false
    const take = (): Chunk.Chunk<SubscriptionItem> => {
      if (sub.missed > 0) {
        ended = true
        all.delete(sub)
        K.add(K.eventLagDrops, {}, 1)
        const missed = sub.missed + sub.events.length - sub.head
        clear(sub)
        return Chunk.of({ _tag: "Lagged", missed, lastSeq: cursor.lastSent })
      }
      const out: Array<SubscriptionItem> = []
      const end = Math.min(sub.events.length, sub.head + TAKE)
      for (let i = sub.head; i < end; i++) {
        const e = sub.events[i]!
        if (!cursor.skipSent || e.seq > cursor.lastSent) {
          out.push({ _tag: "Event", event: e })
          cursor.lastSent = e.seq
        }
      }
      if (end === sub.events.length) {
        clear(sub)
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
    return Stream.repeatEffectChunkOption(
      Effect.suspend(() =>
        ended
          ? Effect.fail(Option.none())
          : Effect.zipRight(
              sub.ready.await,
              Effect.suspend(() => (shutDown ? Effect.interrupt : Effect.succeed(take())))
            )
      )
    )
  }

  /** Ends every subscriber's stream (the bus is closing). */
  const shutdown = () => {
    shutDown = true
    for (const sub of all) sub.ready.unsafeOpen()
    all.clear()
  }

  /** Open subscriptions. */
  const size = () => all.size

  /** Whether any subscriber may want events of `projectId` (its own subscribers, or any not bound to a project). */
  const interested = (projectId: ProjectId): boolean => {
    for (const sub of all) if (sub.projectId === undefined || sub.projectId === projectId) return true
    return false
  }

  return { make, add, remove, deliverAll, liveItems, shutdown, size, interested } as const
}

export type Subscribers = ReturnType<typeof makeSubscribers>
