import { Cause, Effect, Exit, Option, Schedule, Stream } from "effect"
import type { HubRpcClient } from "../client/HubClient.js"
import type { SubscriptionItem } from "../domain/Event.js"
import type { ProjectId } from "../domain/Ids.js"

/**
 * Watches one project's `events.subscribe` stream for the MCP server's subscribed task resources,
 * for as long as the caller's fiber runs. The stream ends after `Lagged` and fails when the hub
 * connection drops; either way the watch subscribes again with `since` = the last seq it saw, so no
 * task change is lost, after a capped exponential backoff (reset once a subscription is live again).
 * `Reset` (the events after that seq were pruned) notifies every subscribed task of the project,
 * since which of them changed can no longer be told. It stops when the hub refuses the
 * subscription (the project is gone or the caller lost access) or when its fiber is interrupted.
 */

export interface TaskWatchOptions {
  readonly client: HubRpcClient
  /** The URI of a subscribed task, if `taskId` is one. */
  readonly uriOf: (taskId: string) => string | undefined
  /** The URIs of the subscribed tasks of a project. */
  readonly urisIn: (projectId: ProjectId) => ReadonlyArray<string>
  /** Sends `notifications/resources/updated` for `uri`. */
  readonly notify: (uri: string) => Effect.Effect<void>
  /** Writes one diagnostic line (stderr for stdio, the hub's log over HTTP). */
  readonly log: (line: string) => Effect.Effect<void>
}

/** Delays between subscriptions: 200 ms doubling, at most 5 s. */
export const resubscribeBackoff = Schedule.exponential("200 millis").pipe(Schedule.union(Schedule.spaced("5 seconds")))

export const watchProject = (projectId: ProjectId, options: TaskWatchOptions): Effect.Effect<void> =>
  Effect.gen(function* () {
    const { client } = options
    const backoff = yield* Schedule.driver(resubscribeBackoff)
    let lastSeq: number | undefined
    let reason = ""

    const notifyAll = (uris: ReadonlyArray<string>) => Effect.forEach(uris, options.notify, { discard: true })

    const handle = (item: SubscriptionItem): Effect.Effect<void> => {
      switch (item._tag) {
        case "Ready":
          lastSeq = Math.max(lastSeq ?? 0, item.seq)
          return backoff.reset
        case "Reset":
          return notifyAll(options.urisIn(projectId))
        case "Lagged":
          lastSeq = Math.max(lastSeq ?? 0, item.lastSeq)
          reason = `fell behind by ${item.missed} events`
          return Effect.void
        case "Event": {
          lastSeq = item.event.seq
          const body = item.event.event
          if (body._tag !== "TasksChanged") return Effect.void
          return notifyAll(
            body.tasks.flatMap((t) => {
              const uri = options.uriOf(t.id)
              return uri === undefined ? [] : [uri]
            })
          )
        }
        default:
          return Effect.void
      }
    }

    const subscribeOnce = Effect.suspend(() => {
      reason = "the event stream ended"
      return client.events.subscribe(lastSeq === undefined ? { projectId } : { projectId, since: lastSeq }).pipe(Stream.runForEach(handle))
    })

    while (true) {
      const exit = yield* Effect.exit(subscribeOnce)
      if (Exit.isFailure(exit)) {
        // Interrupted from outside (the client is closing): nothing more to watch.
        if (Cause.isInterruptedOnly(exit.cause)) return
        const failure = Cause.failureOption(exit.cause)
        if (Option.isSome(failure) && (failure.value._tag === "NotFound" || failure.value._tag === "Forbidden")) {
          return yield* options.log(`kiris mcp: task updates of project ${projectId} stopped: ${failure.value._tag}`)
        }
        reason = `the subscription failed: ${Option.isSome(failure) ? failure.value.message : Cause.pretty(exit.cause).split("\n")[0]}`
      }
      yield* options.log(`kiris mcp: resubscribing to events of project ${projectId} since seq ${lastSeq ?? "now"}: ${reason}`)
      yield* backoff.next(undefined).pipe(Effect.orDie)
    }
  })
