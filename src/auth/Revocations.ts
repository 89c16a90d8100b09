import { Effect, PubSub, Queue, Schema, type Scope, Stream } from "effect"
import { Cluster } from "../cluster/Cluster.js"
import { ApiKeyId, ProjectId, UserId } from "../domain/Ids.js"
import { RootDb } from "../storage/RootDb.js"

/** A change that may take access away from callers with open streams (any membership change, to be safe). */
export const Revocation = Schema.Union(
  Schema.TaggedStruct("Key", { keyId: ApiKeyId }),
  Schema.TaggedStruct("User", { userId: UserId }),
  Schema.TaggedStruct("Member", { projectId: ProjectId, userId: UserId })
)
export type Revocation = typeof Revocation.Type

/** A revocation as hubs send it to each other: the sending hub, so that it skips its own. */
const Notice = Schema.parseJson(Schema.Struct({ hub: Schema.String, revocation: Revocation }))
const encodeNotice = Schema.encodeSync(Notice)
const decodeNotice = Schema.decodeUnknownOption(Notice)

const AUTH_CHANNEL = "kiris_auth"

/**
 * Announces key revocations, user deletions and membership changes to the authorization path, which
 * re-checks the open streams they may affect and ends those that lost access.
 *
 * Hubs sharing a PostgreSQL database hear each other's revocations (NOTIFY on `kiris_auth`, after
 * the change is stored) and announce them again locally, so every hub drops what it cached about
 * the caller and ends its own open streams. Caches register with `invalidate`: they are cleared
 * before a revocation reaches any watcher, so a re-check, or the next call, reads fresh rows.
 */
export class Revocations extends Effect.Service<Revocations>()("kiris/Revocations", {
  scoped: Effect.gen(function* () {
    const cluster = yield* Cluster
    const root = yield* RootDb
    const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<Revocation>(), PubSub.shutdown)
    const invalidators = new Set<(r: Revocation) => Effect.Effect<void>>()

    const announce = (revocation: Revocation) =>
      Effect.zipRight(
        Effect.forEach([...invalidators], (f) => f(revocation), { discard: true }),
        PubSub.publish(pubsub, revocation)
      )

    /** Announces `revocation` here and (PostgreSQL) to the other hubs; call it once the change is stored. */
    const publish = (revocation: Revocation): Effect.Effect<void> =>
      Effect.zipRight(
        announce(revocation),
        cluster.backend === "pg"
          ? // pg_notify takes the payload as a parameter (a NOTIFY statement cannot).
            root`SELECT pg_notify(${AUTH_CHANNEL}, ${encodeNotice({ hub: cluster.hubId, revocation })})`.pipe(
              Effect.catchAllCause((cause) => Effect.logWarning("announcing a revocation to the other hubs failed", { cause })),
              Effect.asVoid
            )
          : Effect.void
      )

    if (cluster.backend === "pg") {
      yield* cluster.listen(AUTH_CHANNEL).pipe(
        Stream.runForEach((payload) => {
          const notice = decodeNotice(payload)
          return notice._tag === "None" || notice.value.hub === cluster.hubId ? Effect.void : announce(notice.value.revocation)
        }),
        Effect.forkScoped
      )
    }

    /**
     * Runs `f` on every revocation, here or from another hub, before any watcher sees it (until the
     * caller's scope closes): for caches of access, which must not answer from before the change.
     */
    const invalidate = (f: (r: Revocation) => Effect.Effect<void>): Effect.Effect<void, never, Scope.Scope> =>
      Effect.acquireRelease(
        Effect.sync(() => void invalidators.add(f)),
        () => Effect.sync(() => void invalidators.delete(f))
      )

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

    return { publish, watch, invalidate } as const
  })
}) {}
