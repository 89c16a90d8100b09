import { Clock, Data, Deferred, Duration, Effect, FiberSet, Option, Queue, Ref, Runtime, Schedule, Stream } from "effect"
import { type HubRpcClient, type HubTarget, makeHubClient } from "../client/HubClient.js"
import { describeError } from "../cli/ClientOptions.js"
import type { SubscriptionItem } from "../domain/Event.js"
import type { ProjectId, TaskId } from "../domain/Ids.js"
import type { PendingAction, TopAction } from "./TopState.js"
import type { TopStore } from "./TopStore.js"

/**
 * Feeds a `TopStore` from a hub: one `events.subscribe` per visible project (task and session
 * events), hub-wide counts and workers refreshed after each burst of events (at most once a
 * second), and a slow backstop refresh for what has no events (worker last-seen, new projects).
 * A lost connection shows as `reconnecting` and is retried with a capped exponential backoff.
 */

export interface FeedOptions {
  readonly target: HubTarget
  readonly hub: string
  readonly token: string
  /** How often counts and workers are re-read without events (default 5 s). */
  readonly backstop?: Duration.DurationInput
}

export interface TopFeed {
  /** Runs a confirmed action against the hub; its outcome lands in the status bar. */
  readonly perform: (action: PendingAction) => void
  /** Re-reads one task (its detail was opened). */
  readonly refreshTask: (taskId: TaskId) => void
}

/** The connection itself failed or ended: reconnect. */
class ConnectionLost extends Data.TaggedError("ConnectionLost")<{ readonly message: string }> {}

const isConnectionError = (e: unknown) => typeof e === "object" && e !== null && (e as { _tag?: unknown })._tag === "RpcClientError"

/** Connection errors end the connection; anything else (a refusal, a bad request) is only reported. */
const classify = (hub: string) => (e: unknown) => (isConnectionError(e) ? new ConnectionLost({ message: describeError(e, hub) }) : e)

export const reconnectSchedule = Schedule.exponential("500 millis").pipe(
  Schedule.union(Schedule.spaced("10 seconds")),
  Schedule.resetAfter("30 seconds")
)

const stats = (client: HubRpcClient) =>
  Effect.all([client.task.stats({}), client.task.workers(), Clock.currentTimeMillis], { concurrency: "unbounded" }).pipe(
    Effect.map(([counts, workers, now]): TopAction => ({ _tag: "Snapshot", now, counts: { ...counts }, workers }))
  )

const eventAction = (item: SubscriptionItem, now: number): TopAction | undefined => {
  if (item._tag !== "Event") return undefined
  const e = item.event.event
  switch (e._tag) {
    case "TasksChanged":
      return { _tag: "TasksChanged", now, tasks: e.tasks }
    case "TaskProgress":
      return { _tag: "TaskProgress", taskId: e.taskId, parts: e.parts }
    case "SessionCreated":
    case "SessionUpdated":
      return { _tag: "SessionChanged", session: e.session }
    case "SessionStatus":
      return { _tag: "SessionStatus", sessionId: e.sessionId, status: e.status }
    case "SessionDeleted":
      return { _tag: "SessionRemoved", sessionId: e.sessionId }
    case "InboxItemAdded":
      return { _tag: "InboxAdded", item: e.item }
    case "InboxItemResolved":
      return { _tag: "InboxResolved", id: e.id }
    default:
      return undefined
  }
}

/** One connection: an initial snapshot, then events until the connection fails. */
const connectOnce = (store: TopStore, options: FeedOptions, current: Ref.Ref<Option.Option<HubRpcClient>>) =>
  Effect.gen(function* () {
    const hub = options.hub
    const client = yield* makeHubClient(options.target, options.token)
    const fibers = yield* FiberSet.make<unknown, unknown>()
    /** What to read again, the most asked for winning: counts and workers, plus new projects (`backstop`), or everything (`all`). */
    const levels = { counts: 1, backstop: 2, all: 3 } as const
    const pending = yield* Ref.make(0)
    const wake = yield* Queue.sliding<void>(1)
    const dirty = {
      offer: (what: keyof typeof levels) => Ref.update(pending, (p) => Math.max(p, levels[what])).pipe(Effect.zipRight(Queue.offer(wake, undefined)))
    }
    const subscribed = new Set<ProjectId>()

    /** Events of one project, for as long as the connection lasts; `live` is done once the subscription is. */
    const subscribe = (projectId: ProjectId, live: Deferred.Deferred<void>) =>
      client.events.subscribe({ projectId }).pipe(
        Stream.runForEach((item) =>
          Effect.gen(function* () {
            if (item._tag === "Ready") return yield* Deferred.succeed(live, undefined)
            if (item._tag === "Lagged") return yield* dirty.offer("all")
            const action = eventAction(item, yield* Clock.currentTimeMillis)
            if (action === undefined) return
            store.dispatch(action)
            if (action._tag === "TasksChanged") yield* dirty.offer("counts")
          })
        ),
        // the hub ends a subscription that fell behind (after `Lagged`): read everything anew and subscribe again
        Effect.zipRight(dirty.offer("all")),
        Effect.repeat(Schedule.spaced("500 millis")),
        Effect.mapError(classify(hub)),
        Effect.catchAll((e) =>
          e instanceof ConnectionLost
            ? Effect.fail(e)
            : Effect.sync(() => {
                subscribed.delete(projectId)
                store.dispatch({ _tag: "Message", text: `events of ${projectId}: ${describeError(e, hub)}`, error: true })
              })
        ),
        Effect.ensuring(Deferred.succeed(live, undefined))
      )

    const inboxOf = (projectId?: ProjectId) =>
      client.inbox.list(projectId === undefined ? {} : { projectId }).pipe(
        Effect.catchIf(
          (e) => !isConnectionError(e),
          () => Effect.succeed([])
        )
      )
    const sessionsOf = (projectId: ProjectId) =>
      client.session.list({ projectId }).pipe(
        Effect.catchIf(
          (e) => !isConnectionError(e),
          () => Effect.succeed([])
        )
      )

    /**
     * Subscribes to the projects not yet watched (waiting until each subscription is live, so that
     * nothing between the reads and the events is missed), then reads counts and workers, and the
     * tasks, inbox and sessions: of every project when `full`, else of the new projects only.
     */
    const refresh = (full: boolean) =>
      Effect.gen(function* () {
        const projects = yield* client.project.list()
        const fresh = projects.filter((p) => !subscribed.has(p.id))
        const live = yield* Effect.forEach(fresh, (p) =>
          Effect.gen(function* () {
            const ready = yield* Deferred.make<void>()
            subscribed.add(p.id)
            yield* FiberSet.run(fibers, subscribe(p.id, ready))
            return ready
          })
        )
        yield* Effect.forEach(live, (ready) => Deferred.await(ready).pipe(Effect.timeout("5 seconds"), Effect.ignore), { discard: true })
        const read = full ? projects : fresh
        const [counts, tasks, inbox, sessions] = yield* Effect.all(
          [
            stats(client),
            full
              ? client.task.list({ limit: 500 })
              : Effect.map(
                  Effect.forEach(read, (p) => client.task.list({ projectId: p.id, limit: 200 })),
                  (ts) => ts.flat()
                ),
            full
              ? inboxOf()
              : Effect.map(
                  Effect.forEach(read, (p) => inboxOf(p.id)),
                  (items) => items.flat()
                ),
            Effect.map(
              Effect.forEach(read, (p) => sessionsOf(p.id), { concurrency: 4 }),
              (ss) => ss.flat()
            )
          ],
          { concurrency: "unbounded" }
        )
        store.dispatch(counts)
        const now = yield* Clock.currentTimeMillis
        const kept = full
          ? []
          : store.get().sessions.filter((s) => projects.some((p) => p.id === s.projectId) && !read.some((p) => p.id === s.projectId))
        store.dispatch({
          _tag: "Snapshot",
          now,
          tasks,
          projects: projects.map((p) => ({ id: p.id, name: p.name })),
          sessions: [...kept, ...sessions],
          ...(full ? { inbox } : {})
        })
        if (!full) for (const item of inbox) store.dispatch({ _tag: "InboxAdded", item })
      })

    yield* refresh(true).pipe(Effect.mapError(classify(hub)))
    yield* Ref.set(current, Option.some(client))
    store.dispatch({ _tag: "Connection", connection: "live" })

    const refresher = Effect.gen(function* () {
      yield* Queue.take(wake)
      const level = yield* Ref.getAndSet(pending, 0)
      if (level === levels.counts) store.dispatch(yield* stats(client))
      else if (level > levels.counts) yield* refresh(level === levels.all)
      yield* Effect.sleep("1 second")
    }).pipe(
      Effect.mapError(classify(hub)),
      Effect.catchAll((e) =>
        e instanceof ConnectionLost
          ? Effect.fail(e)
          : Effect.sync(() => store.dispatch({ _tag: "Message", text: describeError(e, hub), error: true }))
      ),
      Effect.forever
    )
    const backstop = dirty.offer("backstop").pipe(Effect.delay(options.backstop ?? "5 seconds"), Effect.forever)
    yield* FiberSet.run(fibers, refresher)
    yield* FiberSet.run(fibers, backstop)
    return yield* FiberSet.join(fibers)
  }).pipe(Effect.scoped, Effect.ensuring(Ref.set(current, Option.none())))

/**
 * Runs the feed for as long as the caller's fiber lives, reconnecting after connection failures,
 * and returns the operations the app calls. Errors never end the feed.
 */
export const startFeed = (store: TopStore, options: FeedOptions) =>
  Effect.gen(function* () {
    const current = yield* Ref.make(Option.none<HubRpcClient>())
    const runtime = yield* Effect.runtime<never>()
    const run = Runtime.runFork(runtime)
    const report = (e: unknown) => Effect.sync(() => store.dispatch({ _tag: "Message", text: describeError(e, options.hub), error: true }))

    const connection = connectOnce(store, options, current).pipe(
      // a defect too is shown and retried rather than silently ending the feed
      Effect.catchAllDefect((defect) =>
        Effect.fail(new ConnectionLost({ message: `unexpected: ${defect instanceof Error ? defect.message : String(defect)}` }))
      ),
      Effect.tapError((e) =>
        Effect.sync(() =>
          store.dispatch({
            _tag: "Connection",
            connection: "reconnecting",
            error: e instanceof ConnectionLost ? e.message : describeError(e, options.hub)
          })
        )
      ),
      Effect.retry(reconnectSchedule),
      Effect.catchAllCause(() => Effect.void)
    )
    const ticker = Effect.map(Clock.currentTimeMillis, (now) => store.dispatch({ _tag: "Tick", now })).pipe(Effect.delay("1 second"), Effect.forever)
    yield* Effect.forkScoped(connection)
    yield* Effect.forkScoped(ticker)

    const withClient = (f: (client: HubRpcClient) => Effect.Effect<unknown, unknown>) =>
      Effect.flatMap(Ref.get(current), (client) =>
        Option.isNone(client)
          ? Effect.sync(() => store.dispatch({ _tag: "Message", text: "not connected: try again once the hub is back", error: true }))
          : f(client.value)
      ).pipe(Effect.catchAll(report))

    const perform = (action: PendingAction) =>
      run(
        withClient((client) =>
          Effect.gen(function* () {
            if (action._tag === "drain") {
              yield* client.task.drainWorker({ workerId: action.worker.id })
              return store.dispatch({ _tag: "Message", text: `worker ${action.worker.name} is draining`, error: false })
            }
            if (action._tag === "answer" || action._tag === "approve" || action._tag === "reject") {
              // a human task is an inbox item under its task id
              const answer = action._tag === "answer" ? action.answer : action._tag
              const item = action._tag === "answer" ? action.item : { id: action.task.id, projectId: action.task.projectId }
              yield* client.inbox.answer({ id: item.id, answer, projectId: item.projectId })
              store.dispatch({ _tag: "InboxResolved", id: item.id })
              return store.dispatch({ _tag: "Message", text: `${item.id} ${answer === "approve" ? "approved" : "rejected"}`, error: false })
            }
            const taskId = action.task.id
            const task = action._tag === "cancel" ? yield* client.task.cancel({ taskId }) : yield* client.task.retry({ taskId })
            store.dispatch({ _tag: "TasksChanged", now: yield* Clock.currentTimeMillis, tasks: [task] })
            store.dispatch({
              _tag: "Message",
              text: `#${task.seq} ${action._tag === "cancel" ? "cancelled" : "queued again"}: now ${task.status}`,
              error: false
            })
          })
        )
      )

    const refreshTask = (taskId: TaskId) =>
      run(
        withClient((client) =>
          Effect.all([client.task.get({ taskId }), Clock.currentTimeMillis]).pipe(
            Effect.map(([task, now]) => store.dispatch({ _tag: "TasksChanged", now, tasks: [task] }))
          )
        )
      )

    return { perform, refreshTask } satisfies TopFeed
  })
