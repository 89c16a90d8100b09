import { SqlClient } from "@effect/sql"
import { Chunk, Duration, Effect, Option, Schedule, Stream } from "effect"
import { ServerConfig } from "../config/ServerConfig.js"
import { DomainEvent, type EventBody, type SubscriptionItem } from "../domain/Event.js"
import type { ProjectId } from "../domain/Ids.js"
import { ProjectDb } from "../storage/ProjectDb.js"
import * as K from "../transport/metrics/KirisMetrics.js"
import { EventLog } from "./EventLog.js"

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
  /** Events dropped (oldest first) because the backlog was full. */
  missed: number
  /** Open while the backlog is not empty (or the bus has shut down). */
  readonly ready: Effect.Latch
}

/** Where one project's log stands, and the lock that numbers, appends and delivers its events one batch at a time. */
interface ProjectLog {
  readonly lock: Effect.Semaphore
  /** The newest seq (appended and delivered); -1 until read from the log. */
  last: number
  /** Replays reading the log now: pruning waits for them. */
  replays: number
  /** A deleted project: its last events are delivered live, no longer logged (its database is gone). */
  deleted: boolean
}

/** Events per page when replaying from the log. */
const REPLAY_PAGE = 1000
/** Events a subscriber takes from its backlog at once. */
const TAKE = 256

/**
 * The only way state changes reach clients. Services `publish`; transports `subscribe`.
 *
 * Every event gets its project's next `seq` and is appended to the project's event log
 * (EventLog) before live subscribers see it: numbering, append and delivery run under one lock per
 * project, taken after the project database's connection (as a transaction on it holds it), so
 * seqs reach every subscriber in order, without gaps, and a publisher already inside a transaction
 * on the project's database appends within it. `stream` replays from the log and hands over to
 * live delivery without a gap or a duplicate.
 *
 * Each subscriber has its own backlog, bounded by count (`eventBuffer`) and by estimated bytes
 * (`subscriberBufferBytes`): a subscriber that falls further behind gets `Lagged` with the last
 * seq it was sent, and its stream ends (it resumes with `since`), so a client that never reads
 * cannot grow the hub's memory. A scoped fiber prunes the logs of projects that published, every
 * `eventPruneIntervalSeconds`.
 */
export class EventBus extends Effect.Service<EventBus>()("kiris/EventBus", {
  scoped: Effect.gen(function* () {
    const config = yield* ServerConfig
    const dbs = yield* ProjectDb
    const maxEvents = Math.max(1, config.eventBuffer)
    const maxBytes = Math.max(1, config.subscriberBufferBytes)
    const subscribers = new Set<Subscriber>()
    const logs = new Map<ProjectId, ProjectLog>()
    /** Projects that published since the last pruning round. */
    const touched = new Set<ProjectId>()
    let shutDown = false

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        shutDown = true
        for (const sub of subscribers) sub.ready.unsafeOpen()
        subscribers.clear()
      })
    )

    const logOf = (projectId: ProjectId): ProjectLog => {
      let log = logs.get(projectId)
      if (log === undefined) {
        log = { lock: Effect.unsafeMakeSemaphore(1), last: -1, replays: 0, deleted: false }
        logs.set(projectId, log)
      }
      return log
    }

    /**
     * Runs `effect` on the project's database in a transaction (joining the caller's when it is in
     * one on that database), holding the project's lock inside it: connection first, lock second,
     * for every caller, so the two never wait on each other in opposite orders.
     */
    const locked = <A>(projectId: ProjectId, log: ProjectLog, effect: Effect.Effect<A, never, SqlClient.SqlClient>): Effect.Effect<A> =>
      dbs.withProject(projectId)(
        Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql.withTransaction(
            log.lock.withPermits(1)(
              Effect.zipRight(
                log.last < 0 ? Effect.map(EventLog.lastSeq, (last) => void (log.last = last)) : Effect.void,
                effect
              )
            )
          )
        )
      ).pipe(Effect.orDie)

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

    const deliverAll = (events: ReadonlyArray<DomainEvent>) => {
      for (const e of events) {
        let size = -1
        for (const sub of subscribers) {
          if (!sub.filter(e)) continue
          if (size < 0) size = estimateBytes(e.event) + 64
          deliver(sub, e, size)
        }
      }
    }

    const number = (projectId: ProjectId, log: ProjectLog, bodies: ReadonlyArray<EventBody>) => {
      const at = Date.now()
      return bodies.map((event, i) => DomainEvent.make({ seq: log.last + 1 + i, projectId, at, event }, true))
    }

    /**
     * Numbers, logs and delivers `bodies` as consecutive events of the project. Call it right
     * after the change the events report, or inside the transaction making it as its last step
     * (live subscribers get the events at once, before that transaction commits).
     */
    const publishAll = (projectId: ProjectId, bodies: ReadonlyArray<EventBody>): Effect.Effect<void> => {
      if (bodies.length === 0) return Effect.void
      const log = logOf(projectId)
      if (log.deleted) {
        // Nothing is logged for a deleted project; subscribers still get numbered events until they end.
        return log.lock.withPermits(1)(
          Effect.sync(() => {
            const events = number(projectId, log, bodies)
            log.last += events.length
            deliverAll(events)
          })
        )
      }
      return locked(
        projectId,
        log,
        Effect.suspend(() => {
          const events = number(projectId, log, bodies)
          return Effect.map(EventLog.append(events), () => {
            log.last += events.length
            touched.add(projectId)
            deliverAll(events)
            if (bodies.some((b) => b._tag === "ProjectDeleted")) log.deleted = true
          })
        })
      )
    }

    const publish = (projectId: ProjectId, body: EventBody) => publishAll(projectId, [body])

    const newSubscriber = (filter: (e: DomainEvent) => boolean): Effect.Effect<Subscriber> =>
      Effect.map(Effect.makeLatch(false), (ready) => ({ filter, events: [], sizes: [], head: 0, bytes: 0, missed: 0, ready }))

    const clear = (sub: Subscriber) => {
      sub.events = []
      sub.sizes = []
      sub.head = 0
      sub.bytes = 0
    }

    /**
     * The subscriber's live items: its backlog's events after `lastSent` (earlier ones were
     * replayed), in chunks; when its backlog overflowed, `Lagged` with the last seq sent, and the end.
     */
    const liveItems = (sub: Subscriber, cursor: { lastSent: number; readonly skipSent: boolean }): Stream.Stream<SubscriptionItem> => {
      let ended = false
      const take = (): Chunk.Chunk<SubscriptionItem> => {
        if (sub.missed > 0) {
          ended = true
          subscribers.delete(sub)
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

    /**
     * Subscribes now, in the caller's scope, to the events of every project that pass `filter`
     * (in-process use): `Ready {seq: 0}` first (seqs are per project), then events, ending after
     * `Lagged` when the backlog overflows.
     */
    const subscribe = (filter: (e: DomainEvent) => boolean) =>
      Effect.gen(function* () {
        const sub = yield* newSubscriber(filter)
        yield* Effect.acquireRelease(
          Effect.sync(() => subscribers.add(sub)),
          () => Effect.sync(() => subscribers.delete(sub))
        )
        // Seqs of different projects interleave: every event is new to this subscriber.
        const cursor = { lastSent: 0, skipSent: false }
        return Stream.concat(Stream.succeed<SubscriptionItem>({ _tag: "Ready", seq: 0 }), liveItems(sub, cursor))
      })

    /**
     * Subscribes now, in the caller's scope, to one project; see `stream`. Registration happens
     * under the project's lock, so `head` (the last seq then) splits the events exactly: up to it
     * from the log, after it from the live backlog.
     */
    const subscribeProject = (projectId: ProjectId, since: Option.Option<number> = Option.none()) =>
      Effect.gen(function* () {
        const log = logOf(projectId)
        const sub = yield* newSubscriber((e) => e.projectId === projectId)
        let replaying = false
        const replayDone = Effect.sync(() => {
          if (replaying) {
            replaying = false
            log.replays--
          }
        })
        const register = Effect.sync(() => {
          subscribers.add(sub)
          return log.last
        })
        const { head, prunedBelow } = yield* Effect.acquireRelease(
          log.deleted
            ? log.lock.withPermits(1)(Effect.map(register, (head) => ({ head: Math.max(0, head), prunedBelow: 1 })))
            : locked(
                projectId,
                log,
                Effect.gen(function* () {
                  const head = yield* register
                  if (Option.isNone(since)) return { head, prunedBelow: 1 }
                  replaying = true
                  log.replays++
                  return { head, prunedBelow: yield* EventLog.prunedBelow }
                })
              ),
          () => Effect.zipRight(replayDone, Effect.sync(() => subscribers.delete(sub)))
        )
        const cursor = { lastSent: head, skipSent: true }
        const ready = Stream.sync((): SubscriptionItem => ({ _tag: "Ready", seq: head }))
        if (Option.isNone(since)) return Stream.concat(ready, liveItems(sub, cursor))

        const prefix: Array<SubscriptionItem> = []
        let from = since.value
        if (from > head) {
          // A seq this project never reached (another data directory?): start over from now.
          prefix.push({ _tag: "Reset", oldestSeq: head + 1 })
          from = head
        } else if (from + 1 < prunedBelow) {
          prefix.push({ _tag: "Reset", oldestSeq: prunedBelow })
          from = prunedBelow - 1
        }
        cursor.lastSent = from
        const replay = Stream.paginateChunkEffect(from, (after) =>
          after >= head || log.deleted
            ? Effect.succeed([Chunk.empty<SubscriptionItem>(), Option.none<number>()] as const)
            : Effect.map(dbs.withProject(projectId)(EventLog.page(projectId, after, head, REPLAY_PAGE)), (events) => {
                const last = events[events.length - 1]?.seq ?? head
                if (events.length > 0) cursor.lastSent = last
                return [
                  Chunk.unsafeFromArray(events.map((event): SubscriptionItem => ({ _tag: "Event", event }))),
                  events.length < REPLAY_PAGE ? Option.none<number>() : Option.some(last)
                ] as const
              })
        ).pipe(
          Stream.ensuring(replayDone),
          // Deltas dropped from the middle of the log leave holes; the live part starts after `head`.
          Stream.concat(Stream.sync(() => {
            cursor.lastSent = Math.max(cursor.lastSent, head)
          }).pipe(Stream.drain))
        )
        return Stream.fromIterable(prefix).pipe(Stream.concat(replay), Stream.concat(ready), Stream.concat(liveItems(sub, cursor)))
      })

    /**
     * One project's events for a client. Without `since`: `Ready {seq}` (the project's last seq
     * now), then every later event as it is published. With `since`: every logged event after
     * `since`, then `Ready`, then live events — no gap, no duplicate (the live subscription starts
     * before the replay and its backlog holds what is published meanwhile). When the events right
     * after `since` were pruned, `Reset {oldestSeq}` comes first and the replay starts there.
     * A subscriber whose backlog overflows gets `Lagged {lastSeq}` and the stream ends.
     */
    const stream = (projectId: ProjectId, since: Option.Option<number>): Stream.Stream<SubscriptionItem> =>
      Stream.unwrapScoped(subscribeProject(projectId, since))

    /** The project's last seq (0 before its first event). */
    const lastSeq = (projectId: ProjectId): Effect.Effect<number> =>
      Effect.suspend(() => {
        const log = logOf(projectId)
        return log.last >= 0 || log.deleted ? Effect.succeed(Math.max(0, log.last)) : locked(projectId, log, Effect.sync(() => log.last))
      })

    /** Prunes one project's log now (unless a replay is reading it); returns the events dropped. */
    const prune = (projectId: ProjectId, now = Date.now()): Effect.Effect<number> =>
      Effect.suspend(() => {
        const log = logOf(projectId)
        if (log.deleted) return Effect.succeed(0)
        return locked(
          projectId,
          log,
          log.replays > 0
            ? Effect.succeed(0)
            : EventLog.prune({
                before: now - config.eventRetentionDays * 86_400_000,
                keep: config.eventRetentionCount,
                deltasBefore: now - config.eventDeltaRetentionMinutes * 60_000
              })
        )
      })

    const pruneTouched = Effect.suspend(() => {
      const projects = [...touched]
      touched.clear()
      return Effect.forEach(projects, (id) => Effect.catchAllCause(prune(id), (cause) => Effect.logWarning("event log pruning failed", { project: id, cause })), {
        discard: true
      })
    })

    yield* pruneTouched.pipe(
      Effect.repeat(Schedule.spaced(Duration.millis(Math.max(1000, config.eventPruneIntervalSeconds * 1000)))),
      Effect.delay(Duration.millis(Math.max(1000, config.eventPruneIntervalSeconds * 1000))),
      Effect.forkScoped
    )

    /** Open subscriptions (for `/metrics`). */
    const subscriberCount = Effect.sync(() => subscribers.size)

    return { publish, publishAll, subscribe, subscribeProject, stream, lastSeq, prune, subscriberCount } as const
  }),
  dependencies: [ProjectDb.Default]
}) {}
