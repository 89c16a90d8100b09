import { Clock, Duration, Effect, Option, Stream } from "effect"
import { Cluster } from "../cluster/Cluster.js"
import { ServerConfig } from "../config/ServerConfig.js"
import { DomainEvent, type EventBody, type SubscriptionItem } from "../domain/Event.js"
import type { ProjectId } from "../domain/Ids.js"
import { ProjectDb } from "../storage/ProjectDb.js"
import { EventLog } from "./EventLog.js"
import { EVENTS_CHANNEL, type EventNotice, parseNotice, sendNotice } from "./EventNotices.js"
import { makeEventRetention } from "./EventRetention.js"
import { type ProjectLog, makeProjectLogs } from "./ProjectLogs.js"
import { makeProjectSubscription } from "./Replay.js"
import { makeSubscribers } from "./Subscribers.js"

export { estimateBytes } from "./Subscribers.js"

/** Streamed deltas wait this long for more before they are appended to the log together. */
const DELTA_LOG_DELAY = Duration.millis(100)

/**
 * The only way state changes reach clients. Services `publish`; transports `subscribe`.
 *
 * Every event gets its project's next `seq` and is appended to the project's event log
 * (EventLog) before live subscribers see it: numbering, append and delivery run under one lock per
 * project (ProjectLogs), taken after the project database's connection (as a transaction on it
 * holds it), so seqs reach every subscriber in order, without gaps, and a publisher already inside
 * a transaction on the project's database appends within it. `stream` replays from the log and
 * hands over to live delivery without a gap or a duplicate (Replay). What a turn streams
 * (`publishStreamed`: deltas, and the empty parts they go into) is delivered first and appended in
 * batches right after, before anything reads the log, so it never waits for the database.
 *
 * Each subscriber has its own backlog (Subscribers), bounded by count (`eventBuffer`) and by
 * estimated bytes (`subscriberBufferBytes`): a subscriber that falls further behind gets `Lagged`
 * with the last seq it was sent, and its stream ends (it resumes with `since`), so a client that
 * never reads cannot grow the hub's memory. While events wait in a backlog, a delta joins the delta
 * to the same part waiting right before it: a client that keeps up gets every delta as it came, a
 * slow one fewer, longer ones, nothing lost. A scoped fiber prunes the logs of projects that
 * published, every `eventPruneIntervalSeconds` (EventRetention).
 *
 * Hubs sharing a PostgreSQL database share every project's log. Appends take the project's
 * advisory lock (ProjectLogs), so seqs stay contiguous across hubs and commit in seq order; every
 * event is appended as it is numbered (streamed deltas too), and each append sends a notice
 * (`kiris_events`, at commit). A hub catches up on what others appended (reading the log after
 * its own last seq, so a lost notice costs nothing once the next one, or its next publish, comes)
 * and delivers it to its subscribers in order before anything newer. What each hub keeps in
 * memory (subscribers, backlogs, its view of `last`) is its own.
 */
export class EventBus extends Effect.Service<EventBus>()("kiris/EventBus", {
  scoped: Effect.gen(function* () {
    const config = yield* ServerConfig
    const dbs = yield* ProjectDb
    const cluster = yield* Cluster
    /** Other hubs append to the same logs (PostgreSQL). */
    const shared = cluster.backend === "pg"
    const subscribers = makeSubscribers({ maxEvents: Math.max(1, config.eventBuffer), maxBytes: Math.max(1, config.subscriberBufferBytes) })
    const logs = makeProjectLogs(dbs, { shared, deliver: subscribers.deliverAll, interested: subscribers.interested })

    yield* Effect.addFinalizer(() => Effect.sync(() => subscribers.shutdown()))

    const retention = yield* makeEventRetention(config, logs)

    const number = (projectId: ProjectId, log: ProjectLog, bodies: ReadonlyArray<EventBody>, at: number) =>
      bodies.map((event, i) => DomainEvent.make({ seq: log.last + 1 + i, projectId, at, event }, true))

    // The delta writer: projects with pending deltas get them appended `DELTA_LOG_DELAY` after the first.
    const waiting = new Set<ProjectId>()
    const wake = yield* Effect.makeLatch(false)
    const markPending = (projectId: ProjectId) => {
      if (waiting.size === 0) wake.unsafeOpen()
      waiting.add(projectId)
    }
    const appendWaiting = (projects: ReadonlyArray<ProjectId>) =>
      Effect.forEach(
        projects,
        (id) => {
          const log = logs.of(id)
          return log.pending.length === 0 || log.deleted
            ? Effect.void
            : Effect.catchAllCause(logs.locked(id, log, Effect.void), (cause) =>
                Effect.logWarning("appending streamed deltas failed", { project: id, cause })
              )
        },
        { discard: true }
      ).pipe(Effect.uninterruptible)
    // At shutdown (after the writer stopped): whatever is still pending.
    yield* Effect.addFinalizer(() => Effect.suspend(() => appendWaiting(logs.withPending())))
    yield* Effect.gen(function* () {
      for (;;) {
        yield* wake.await
        yield* Effect.sleep(DELTA_LOG_DELAY)
        wake.unsafeClose()
        const projects = [...waiting]
        waiting.clear()
        yield* appendWaiting(projects)
      }
    }).pipe(Effect.forkScoped)

    /**
     * Numbers, logs and delivers `bodies` as consecutive events of the project. Call it right
     * after the change the events report, or inside the transaction making it as its last step
     * (live subscribers get the events at once, before that transaction commits).
     */
    const publishAll = (projectId: ProjectId, bodies: ReadonlyArray<EventBody>): Effect.Effect<void> => {
      if (bodies.length === 0) return Effect.void
      const log = logs.of(projectId)
      if (log.deleted) {
        // Nothing is logged for a deleted project; subscribers still get numbered events until they end.
        return Effect.flatMap(Clock.currentTimeMillis, (at) =>
          log.lock.withPermits(1)(
            Effect.sync(() => {
              const events = number(projectId, log, bodies, at)
              log.last += events.length
              log.pending = []
              subscribers.deliverAll(events)
            })
          )
        )
      }
      return logs.locked(
        projectId,
        log,
        Effect.flatMap(Clock.currentTimeMillis, (at) => {
          const events = number(projectId, log, bodies, at)
          const deleted = bodies.some((b) => b._tag === "ProjectDeleted")
          const appended = EventLog.append(events)
          return Effect.map(shared ? Effect.zipRight(appended, sendNotice({ projectId, seq: log.last + events.length, deleted })) : appended, () => {
            log.last += events.length
            retention.touch(projectId)
            subscribers.deliverAll(events)
            if (deleted) log.deleted = true
          })
        })
      )
    }

    const publish = (projectId: ProjectId, body: EventBody) => publishAll(projectId, [body])

    /**
     * What a turn streams — `PartDelta`s and the new, still empty parts they go into: numbered and
     * delivered at once like `publishAll`'s events, without waiting for the database. They are
     * appended to the log in batches shortly after, and always before any later event of the
     * project, a replay or pruning reads the log (ProjectLogs). A hub that stops abruptly loses at
     * most the last `DELTA_LOG_DELAY` of them from the log (the message's parts carry its text at
     * every part end, and its record says it was interrupted).
     */
    const publishStreamed = (projectId: ProjectId, bodies: ReadonlyArray<EventBody>): Effect.Effect<void> => {
      if (bodies.length === 0) return Effect.void
      const log = logs.of(projectId)
      // Shared with other hubs, the log numbers every event: nothing is numbered in memory ahead of it.
      if (shared || log.last < 0 || log.deleted) return publishAll(projectId, bodies)
      return Effect.flatMap(Clock.currentTimeMillis, (at) =>
        log.lock.withPermits(1)(
          Effect.sync(() => {
            const events = number(projectId, log, bodies, at)
            log.last += events.length
            if (!log.deleted) {
              for (const e of events) log.pending.push(e)
              markPending(projectId)
            }
            subscribers.deliverAll(events)
          })
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
        const sub = yield* subscribers.make(filter)
        yield* Effect.acquireRelease(
          Effect.sync(() => subscribers.add(sub)),
          () => Effect.sync(() => subscribers.remove(sub))
        )
        // Seqs of different projects interleave: every event is new to this subscriber.
        const cursor = { lastSent: 0, skipSent: false }
        return Stream.concat(Stream.succeed<SubscriptionItem>({ _tag: "Ready", seq: 0 }), subscribers.liveItems(sub, cursor))
      })

    /** Subscribes now, in the caller's scope, to one project; see `stream`. */
    const subscribeProject = makeProjectSubscription({ dbs, logs, subscribers, shared })

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

    /** The project's last seq (0 before its first event); with other hubs, as committed by any of them now. */
    const lastSeq = (projectId: ProjectId): Effect.Effect<number> =>
      Effect.suspend(() => {
        const log = logs.of(projectId)
        return log.deleted || (log.last >= 0 && !shared)
          ? Effect.succeed(Math.max(0, log.last))
          : logs.synced(
              projectId,
              log,
              Effect.sync(() => Math.max(0, log.last))
            )
      })

    /**
     * Another hub appended events (or this one: every hub hears its own notices). A project this hub
     * delivers events of catches up under its lock; one nobody here subscribes to only forgets its
     * `last` (read again from the log on next use). A deleted project's `ProjectDeleted` is delivered
     * from the notice itself, since its database is being dropped.
     */
    const onNotice = (notice: EventNotice): Effect.Effect<void> =>
      Effect.suspend(() => {
        const log = logs.get(notice.projectId)
        if (log === undefined || log.deleted || log.last < 0 || notice.seq <= log.last) return Effect.void
        if (notice.deleted) {
          return Effect.flatMap(Clock.currentTimeMillis, (at) =>
            log.lock.withPermits(1)(
              Effect.suspend(() => {
                if (log.deleted || notice.seq <= log.last) return Effect.void
                log.last = notice.seq
                log.deleted = true
                subscribers.deliverAll([
                  DomainEvent.make(
                    { seq: notice.seq, projectId: notice.projectId, at, event: { _tag: "ProjectDeleted", projectId: notice.projectId } },
                    true
                  )
                ])
                return dbs.close(notice.projectId)
              })
            )
          )
        }
        if (!subscribers.interested(notice.projectId)) {
          return log.lock.withPermits(1)(
            Effect.sync(() => {
              if (log.pending.length === 0 && !log.deleted) log.last = -1
            })
          )
        }
        return logs.synced(notice.projectId, log, Effect.void)
      })

    if (shared) {
      yield* cluster.listen(EVENTS_CHANNEL).pipe(
        Stream.runForEach((payload) => {
          const notice = parseNotice(payload)
          return notice === undefined
            ? Effect.void
            : Effect.catchAllCause(onNotice(notice), (cause) =>
                Effect.logWarning("catching up with another hub's events failed", { project: notice.projectId, cause })
              )
        }),
        Effect.forkScoped
      )
    }

    /** Open subscriptions (for `/metrics`). */
    const subscriberCount = Effect.sync(() => subscribers.size())

    return { publish, publishAll, publishStreamed, subscribe, subscribeProject, stream, lastSeq, prune: retention.prune, subscriberCount } as const
  }),
  dependencies: [ProjectDb.Default]
}) {}
