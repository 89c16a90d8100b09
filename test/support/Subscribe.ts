import { type Duration, Effect, Queue, Stream } from "effect"
import type { HubRpcClient } from "../../src/client/HubClient.js"
import type { SubscriptionItem } from "../../src/domain/Event.js"
import type { ProjectId } from "../../src/domain/Ids.js"

/** The next item of `queue`; the test fails naming `what` when none comes within `timeout`. */
export const takeWithin = <A>(queue: Queue.Dequeue<A>, what: string, timeout: Duration.DurationInput = "10 seconds") =>
  Queue.take(queue).pipe(Effect.timeoutFail({ duration: timeout, onTimeout: () => new Error(`timed out waiting for ${what}`) }), Effect.orDie)

/**
 * Subscribes `client` to a project's events in the caller's scope, queueing every item, and returns
 * the queue once the subscription is live (its `Ready` was taken).
 */
export const subscribeQueued = (client: HubRpcClient, projectId: ProjectId) =>
  Effect.gen(function* () {
    const items = yield* Queue.unbounded<SubscriptionItem>()
    yield* client.events.subscribe({ projectId }).pipe(
      Stream.runForEach((item) => Queue.offer(items, item)),
      Effect.orDie,
      Effect.forkScoped
    )
    const ready = yield* takeWithin(items, "Ready")
    if (ready._tag !== "Ready") return yield* Effect.die(new Error(`the subscription began with ${ready._tag}, not Ready`))
    return items
  })
