import type { RpcClientError } from "@effect/rpc/RpcClientError"
import { Data, Deferred, Duration, Effect, ExecutionStrategy, Exit, Schedule, Scope, Stream } from "effect"
import { type HubRpcClient, type HubTarget, makeHubClient } from "../client/HubClient.js"
import type { DomainEvent } from "../domain/Event.js"
import type { ProjectId } from "../domain/Ids.js"
import { CliError } from "./ClientOptions.js"

/**
 * The chat's connection to the hub, which survives the hub: when the event stream ends or fails
 * (or a call fails in transport), `reconnect` opens a new connection with capped exponential
 * backoff, subscribes again from the last event it saw (so nothing is missed), and gives up after
 * `reconnectTimeout`.
 */

/** What the connection feeds the chat; `lost` carries the connection it came from, so a stale one is ignored. */
export type LinkInput =
  | { readonly _tag: "event"; readonly event: DomainEvent }
  | { readonly _tag: "lagged"; readonly missed: number }
  | { readonly _tag: "lost"; readonly generation: number }

export interface ChatLinkOptions {
  readonly target: HubTarget
  readonly token: string
  readonly reconnectTimeout: Duration.Duration
  readonly deliver: (input: LinkInput) => Effect.Effect<void>
  /** Shows a status line (on stderr). */
  readonly status: (line: string) => Effect.Effect<void>
}

/** A failure of the connection itself (socket closed, refused, timed out), not an answer of the hub. */
export const isTransportError = (e: unknown): e is RpcClientError =>
  typeof e === "object" && e !== null && (e as { readonly _tag?: unknown })._tag === "RpcClientError"

/** The hub ended the event stream (e.g. while shutting down): the connection is as good as lost. */
export class StreamEnded extends Data.TaggedError("StreamEnded")<{}> {
  override get message() {
    return "the hub ended the event stream"
  }
}

const isConnectionLoss = (e: unknown) => isTransportError(e) || e instanceof StreamEnded

type SubscribeError = Stream.Stream.Error<ReturnType<HubRpcClient["events"]["subscribe"]>>

/** Waits 200 ms, 400 ms, 800 ms, … between attempts, never more than 2 s. */
export const reconnectSchedule = Schedule.exponential("200 millis", 2).pipe(Schedule.union(Schedule.spaced("2 seconds")))

const clock = (d: Date) => `${d.toISOString().slice(11, 19)} UTC`

const seconds = (d: Duration.Duration) => {
  const s = Duration.toSeconds(d)
  return Number.isInteger(s) ? `${s}s` : `${s.toFixed(1)}s`
}

export const makeChatLink = (options: ChatLinkOptions) =>
  Effect.gen(function* () {
    const parent = yield* Effect.scope
    const open = Effect.gen(function* () {
      const scope = yield* Scope.fork(parent, ExecutionStrategy.sequential)
      const client = yield* makeHubClient(options.target, options.token).pipe(Scope.extend(scope))
      return { scope, client }
    })
    let current = yield* open
    let generation = 0

    /** The last seq of the watched project the chat was sent: where a new subscription resumes. */
    let lastSeq: number | undefined

    /**
     * Forks the project's event stream into the chat and waits until it is live. It resumes after
     * `lastSeq` (a reconnect misses nothing the hub still logs); after `Lagged` it subscribes again
     * on the same connection from there. `Reset` (the events after `lastSeq` were pruned) reaches
     * the chat as `lagged`, which re-reads the session.
     */
    const subscribe = (client: HubRpcClient, scope: Scope.Scope, gen: number, projectId: ProjectId) =>
      Effect.gen(function* () {
        const ready = yield* Deferred.make<void, SubscribeError | StreamEnded>()
        let live = false
        let lagged = false
        const once = Effect.suspend(() => {
          lagged = false
          return client.events.subscribe({ projectId, ...(lastSeq === undefined ? {} : { since: lastSeq }) }).pipe(
            Stream.runForEach((item) => {
              switch (item._tag) {
                case "Ready":
                  live = true
                  lastSeq = item.seq
                  return Deferred.succeed(ready, undefined)
                // who else is connected is not shown in the chat
                case "Presence":
                  return Effect.void
                case "Lagged":
                  lagged = true
                  lastSeq = item.lastSeq
                  return Effect.void
                case "Reset": {
                  const missed = item.oldestSeq - 1 - (lastSeq ?? 0)
                  lastSeq = item.oldestSeq - 1
                  return options.deliver({ _tag: "lagged", missed })
                }
                case "Event":
                  lastSeq = item.event.seq
                  return options.deliver({ _tag: "event", event: item.event })
              }
            })
          )
        })
        yield* once.pipe(
          Effect.repeat({ while: () => lagged }),
          Effect.onExit((exit) => {
            if (Exit.isInterrupted(exit)) return Effect.void
            const failed = Exit.isFailure(exit) ? Deferred.failCause(ready, exit.cause) : Deferred.fail(ready, new StreamEnded())
            return Effect.zipRight(failed, live ? options.deliver({ _tag: "lost", generation: gen }) : Effect.void)
          }),
          Effect.ignore,
          Effect.forkIn(scope)
        )
        yield* Deferred.await(ready)
      })

    let watched: ProjectId | undefined

    /** Subscribes to the project's events on the current connection (live from now). */
    const watch = (projectId: ProjectId) => {
      if (watched !== projectId) lastSeq = undefined
      watched = projectId
      return subscribe(current.client, current.scope, generation, projectId)
    }

    /**
     * Drops the current connection and opens a new one (subscribed again when a project is
     * watched), retrying while the hub cannot be reached; fails with a `CliError` after the
     * reconnect timeout.
     */
    const reconnect = Effect.gen(function* () {
      const lostAt = new Date()
      yield* Scope.close(current.scope, Exit.void)
      yield* options.status(`… lost the hub at ${clock(lostAt)}; reconnecting (giving up after ${seconds(options.reconnectTimeout)})`)
      const attempt = Effect.gen(function* () {
        const next = yield* open
        const projectId = watched
        const subscribed = projectId === undefined ? next.client.user.whoami() : subscribe(next.client, next.scope, generation + 1, projectId)
        yield* subscribed.pipe(Effect.onError(() => Scope.close(next.scope, Exit.void)))
        return next
      })
      const next = yield* attempt.pipe(
        Effect.retry({ schedule: reconnectSchedule, while: isConnectionLoss }),
        Effect.timeoutFail({
          duration: options.reconnectTimeout,
          onTimeout: () =>
            new CliError({ message: `lost the hub at ${clock(lostAt)} and could not reconnect within ${seconds(options.reconnectTimeout)}` })
        })
      )
      generation += 1
      current = next
      yield* options.status(`… reconnected to the hub`)
    })

    return {
      /** The client of the current connection (a new one after each reconnect). */
      client: () => current.client,
      /** How many times the connection was re-opened. */
      generation: () => generation,
      /** Whether a `lost` input is about the current connection. */
      isCurrent: (gen: number) => gen === generation,
      watch,
      reconnect
    }
  })

export type ChatLink = Effect.Effect.Success<ReturnType<typeof makeChatLink>>
