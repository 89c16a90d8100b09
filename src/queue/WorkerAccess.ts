import { Cache, Duration, Effect, Option } from "effect"
import { Revocations } from "../auth/Revocations.js"
import { UsersRepo } from "../auth/UsersRepo.js"
import { type Principal, roleAtLeast } from "../domain/Auth.js"
import { Forbidden } from "../domain/Errors.js"
import type { ProjectId, UserId } from "../domain/Ids.js"
import { ProjectsRepo } from "../project/ProjectsRepo.js"

/** How long a worker owner's admin flag and memberships are reused (membership changes clear them at once). */
const TTL = Duration.seconds(5)

interface OwnerGrants {
  readonly isAdmin: boolean
  /** Projects where the owner is a member or above. */
  readonly runs: ReadonlyArray<ProjectId>
}

/** The identity a worker registration is bound to: the key, or the user for a login token. */
export const workerOwner = (caller: Principal): string => caller.keyId ?? `user:${caller.userId}`

/**
 * Which projects a worker key serves: those where its owner may run work (role member or above),
 * or every project for a server admin's key; and, when the key names projects, only those of them.
 * Owners' grants are cached for a few seconds, so leasing reads no root-database rows per call; a
 * membership change reaches the key's workers within that time.
 */
export class WorkerAccess extends Effect.Service<WorkerAccess>()("kiris/WorkerAccess", {
  scoped: Effect.gen(function* () {
    const users = yield* UsersRepo
    const projects = yield* ProjectsRepo
    const revocations = yield* Revocations

    const grants = yield* Cache.make({
      capacity: 10_000,
      timeToLive: TTL,
      lookup: (userId: UserId) =>
        Effect.gen(function* () {
          const owner = yield* users.byId(userId)
          if (Option.isNone(owner)) return { isAdmin: false, runs: [] } satisfies OwnerGrants
          if (owner.value.isAdmin) return { isAdmin: true, runs: [] } satisfies OwnerGrants
          const mine = yield* projects.listFor(userId)
          return {
            isAdmin: false,
            runs: mine.filter((p) => p.role !== undefined && roleAtLeast(p.role, "member")).map((p) => p.id)
          } satisfies OwnerGrants
        })
    })

    // A membership change or a deleted user is seen at once, not after the cache's time to live.
    const onChange = yield* revocations.watch(
      (r) => r._tag !== "Key",
      (r) => (r._tag === "Key" ? Effect.void : grants.invalidate(r.userId))
    )
    yield* Effect.forkScoped(onChange)

    /** The projects `caller` serves as a worker; `undefined` = every project. */
    const servedProjects = (caller: Principal): Effect.Effect<ReadonlyArray<ProjectId> | undefined, Forbidden> =>
      caller.kind !== "worker"
        ? Effect.fail(new Forbidden({ reason: "worker operations need a worker key (kiris key create NAME --scope worker)" }))
        : Effect.map(grants.get(caller.userId), (owner) => {
            const named = caller.projects
            if (owner.isAdmin) return named
            return named === undefined ? owner.runs : owner.runs.filter((id) => named.includes(id))
          })

    return { servedProjects } as const
  }),
  dependencies: [UsersRepo.Default, ProjectsRepo.Default, Revocations.Default]
}) {}
