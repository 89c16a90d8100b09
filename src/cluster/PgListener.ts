import { Deferred, Effect, FiberId, PubSub, Schedule, type Scope, Stream } from "effect"
import { createRequire } from "node:module"
import type { ClusterChannel } from "./Channels.js"

/** The one part of the `pg` driver used here (the driver ships no type declarations). */
interface ListenClient {
  connect(): Promise<void>
  query(text: string): Promise<unknown>
  end(): Promise<void>
  on(event: "notification", f: (msg: { channel: string; payload?: string }) => void): void
  on(event: "error" | "end", f: (e?: unknown) => void): void
}
const { Client } = createRequire(import.meta.url)("pg") as { Client: new (config: { connectionString: string }) => ListenClient }

export interface Notice {
  readonly channel: ClusterChannel
  readonly payload: string
}

/**
 * One LISTEN connection for all of a hub's channels, opened again (with backoff) whenever it fails
 * or ends: the driver reports a lost connection only as an event, so this loop watches for it.
 * Notifications sent while it was down are gone; receivers read rows, not payloads, and catch up
 * with the next one. `listen(channel)` streams what arrives from the moment it is called.
 */
export const makePgListener = (
  url: string,
  channels: ReadonlyArray<ClusterChannel>
): Effect.Effect<{ readonly listen: (channel: ClusterChannel) => Stream.Stream<string> }, never, Scope.Scope> =>
  Effect.gen(function* () {
    const notices = yield* Effect.acquireRelease(PubSub.unbounded<Notice>(), PubSub.shutdown)
    const known = new Set<string>(channels)

    /** Connects, listens, and waits until the connection is lost (then fails, to be retried). */
    const session = Effect.acquireUseRelease(
      Effect.tryPromise(async () => {
        const client = new Client({ connectionString: url })
        const lost = Deferred.unsafeMake<never, Error>(FiberId.none)
        client.on("error", (e) => Deferred.unsafeDone(lost, Effect.fail(e instanceof Error ? e : new Error(String(e)))))
        client.on("end", () => Deferred.unsafeDone(lost, Effect.fail(new Error("LISTEN connection ended"))))
        client.on("notification", (msg) => {
          if (known.has(msg.channel) && msg.payload !== undefined) {
            // An unbounded PubSub: publishing completes at once, from the driver's callback.
            Effect.runSync(PubSub.publish(notices, { channel: msg.channel as ClusterChannel, payload: msg.payload }))
          }
        })
        await client.connect()
        for (const channel of channels) await client.query(`LISTEN ${channel}`)
        return { client, lost }
      }),
      ({ lost }) => Deferred.await(lost),
      ({ client }) => Effect.promise(() => client.end().catch(() => undefined)).pipe(Effect.timeoutOption("1 second"))
    )

    yield* session.pipe(
      Effect.tapError((e) => Effect.logWarning("LISTEN connection lost; reconnecting", { error: String(e) })),
      Effect.retry(Schedule.exponential("100 millis").pipe(Schedule.union(Schedule.spaced("5 seconds")))),
      Effect.forkScoped
    )

    return {
      listen: (channel: ClusterChannel) =>
        Stream.fromPubSub(notices).pipe(
          Stream.filter((n) => n.channel === channel),
          Stream.map((n) => n.payload)
        )
    }
  })
