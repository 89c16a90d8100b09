import { Effect, PubSub, Queue } from "effect"
import type { ApiKeyId, ProjectId, UserId } from "../domain/Ids.js"

/** A change that may take access away from callers with open streams (any membership change, to be safe). */
export type Revocation =
  | { readonly _tag: "Key"; readonly keyId: ApiKeyId }
  | { readonly _tag: "User"; readonly userId: UserId }
  | { readonly _tag: "Member"; readonly projectId: ProjectId; readonly userId: UserId }

/**
 * Announces key revocations, user deletions and membership changes to the authorization path, which
 * re-checks the open streams they may affect and ends those that lost access.
 */
export class Revocations extends Effect.Service<Revocations>()("kiris/Revocations", {
  scoped: Effect.gen(function* () {
    const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<Revocation>(), PubSub.shutdown)

    const publish = (revocation: Revocation) => Effect.asVoid(PubSub.publish(pubsub, revocation))

    /**
     * Subscribes now (in the caller's scope) and returns an effect that waits for the first
     * revocation `affects` matches and `stillAllowed` then refuses, failing with that refusal.
     */
    const watch = <E>(affects: (r: Revocation) => boolean, stillAllowed: (r: Revocation) => Effect.Effect<unknown, E>) =>
      Effect.map(
        PubSub.subscribe(pubsub),
        (queue) =>
          Effect.gen(function* () {
            for (;;) {
              const revocation = yield* Queue.take(queue)
              if (affects(revocation)) yield* stillAllowed(revocation)
            }
          }) as Effect.Effect<never, E>
      )

    return { publish, watch } as const
  })
}) {}
