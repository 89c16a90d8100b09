import { Chunk, Effect, Option, Stream } from "effect"
import type { SubscriptionItem } from "../domain/Event.js"
import type { ProjectId } from "../domain/Ids.js"
import type { ProjectDb } from "../storage/ProjectDb.js"
import { EventLog } from "./EventLog.js"
import type { ProjectLogs } from "./ProjectLogs.js"
import type { Subscribers } from "./Subscribers.js"

/** Events per page when replaying from the log. */
const REPLAY_PAGE = 1000

/**
 * One project's subscription, replayed from its log and handed over to live delivery (see
 * `EventBus.stream`). Registration happens under the project's lock, so `head` (the last seq then)
 * splits the events exactly: up to it from the log, after it from the live backlog.
 */
export const makeProjectSubscription = (deps: {
  readonly dbs: ProjectDb
  readonly logs: ProjectLogs
  readonly subscribers: Subscribers
  /** Other hubs share the log (PostgreSQL) and may prune it while a replay here reads it. */
  readonly shared: boolean
}) => {
  const { dbs, logs, subscribers, shared } = deps

  /**
   * One page of the replay after `after`. On a shared log another hub may have pruned it meanwhile
   * (this hub's replays hold only its own pruning off): `pruned_below` is read after the page, so a
   * page missing pruned events is always seen as such, and `Reset` tells the client where the log
   * now starts.
   */
  const readPage = (projectId: ProjectId, after: number, head: number) =>
    dbs.withProject(projectId)(
      Effect.gen(function* () {
        const events = yield* EventLog.page(projectId, after, head, REPLAY_PAGE)
        if (!shared) return { events, reset: undefined }
        const prunedBelow = yield* EventLog.prunedBelow
        const first = events[0]?.seq ?? head + 1
        return { events, reset: prunedBelow > after + 1 && first > after + 1 ? Math.min(first, prunedBelow) : undefined }
      })
    )
  return (projectId: ProjectId, since: Option.Option<number> = Option.none()) =>
    Effect.gen(function* () {
      const log = logs.of(projectId)
      const sub = yield* subscribers.make((e) => e.projectId === projectId, projectId)
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
          : logs.locked(
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
        () =>
          Effect.zipRight(
            replayDone,
            Effect.sync(() => subscribers.remove(sub))
          )
      )
      const cursor = { lastSent: head, skipSent: true }
      const ready = Stream.sync((): SubscriptionItem => ({ _tag: "Ready", seq: head }))
      if (Option.isNone(since)) return Stream.concat(ready, subscribers.liveItems(sub, cursor))

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
          : Effect.map(readPage(projectId, after, head), ({ events, reset }) => {
              const last = events[events.length - 1]?.seq ?? head
              if (events.length > 0) cursor.lastSent = last
              const items = events.map((event): SubscriptionItem => ({ _tag: "Event", event }))
              return [
                Chunk.unsafeFromArray(reset === undefined ? items : [{ _tag: "Reset", oldestSeq: reset } as const, ...items]),
                events.length < REPLAY_PAGE ? Option.none<number>() : Option.some(last)
              ] as const
            })
      ).pipe(
        Stream.ensuring(replayDone),
        // Deltas dropped from the middle of the log leave holes; the live part starts after `head`.
        Stream.concat(
          Stream.sync(() => {
            cursor.lastSent = Math.max(cursor.lastSent, head)
          }).pipe(Stream.drain)
        )
      )
      return Stream.fromIterable(prefix).pipe(Stream.concat(replay), Stream.concat(ready), Stream.concat(subscribers.liveItems(sub, cursor)))
    })
}
