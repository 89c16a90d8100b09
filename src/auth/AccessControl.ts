import { Cache, Duration, Effect, Option } from "effect"
import { type Requirement, requirementOf, select } from "../domain/Access.js"
import { hasScope, roleAtLeast, type Principal, type Role } from "../domain/Auth.js"
import { Forbidden, NotFound, Unauthorized } from "../domain/Errors.js"
import type { ProjectId, UserId } from "../domain/Ids.js"
import type { Project } from "../domain/Project.js"
import { ClientRpcs } from "../domain/rpc/ClientRpcs.js"
import { ProjectAccess } from "../project/ProjectAccess.js"
import { ProjectsRepo } from "../project/ProjectsRepo.js"
import { TaskQueue } from "../queue/TaskQueue.js"
import { Revocations } from "./Revocations.js"
import { UsersRepo } from "./UsersRepo.js"

/** The project an operation runs in, and the caller's role there. */
export interface ProjectGrant {
  readonly project: Project
  readonly role: Role
}

const unique = <A>(items: ReadonlyArray<A>): ReadonlyArray<A> => (items.length < 2 ? items : [...new Set(items)])

/**
 * The one authorization path: given a caller, the requirement an operation declares (see
 * domain/Access.ts) and the operation's decoded input, it allows or refuses the call. The RPC
 * middleware, its REST twin and in-process callers (agent tools) all go through `check`.
 *
 * - Worker keys reach worker operations only, and only worker keys reach those.
 * - Project access: a project the caller is not a member of (or that their key does not name) is
 *   `NotFound`, like an unknown one; too low a role is `Forbidden`. Server admins act as owners.
 * - The `execute` grant: a key with the `execute` scope (login tokens have every scope) whose user
 *   is a server admin or holds the grant in that project.
 */
export class AccessControl extends Effect.Service<AccessControl>()("kiris/AccessControl", {
  scoped: Effect.gen(function* () {
    const access = yield* ProjectAccess
    const projects = yield* ProjectsRepo
    const users = yield* UsersRepo
    const queue = yield* TaskQueue
    const revocations = yield* Revocations

    /** Login tokens outlive a deleted user's row; whether the user still exists is cached briefly. */
    const userExists = yield* Cache.make({
      capacity: 10_000,
      timeToLive: Duration.seconds(10),
      lookup: (id: UserId) => Effect.map(users.byId(id), Option.isSome)
    })
    // A user deleted on this hub or another: forgotten before any open stream is re-checked.
    yield* revocations.invalidate((r) => (r._tag === "User" ? userExists.invalidate(r.userId) : Effect.void))

    const forbid = (reason: string) => Effect.fail(new Forbidden({ reason }))

    /** A principal whose user was deleted is refused everywhere. */
    const authenticated = (caller: Principal): Effect.Effect<void, Unauthorized> =>
      Effect.flatMap(userExists.get(caller.userId), (exists) =>
        exists ? Effect.void : Effect.fail(new Unauthorized({ reason: "the user of these credentials no longer exists" }))
      )

    const inProject = Effect.fn("AccessControl.inProject")(function* (caller: Principal, projectId: ProjectId, min: Role) {
      if (caller.projects !== undefined && !caller.projects.includes(projectId)) {
        return yield* new NotFound({ entity: "project", id: projectId })
      }
      const grant = yield* access.roleOf(caller, projectId)
      if (!roleAtLeast(grant.role, min)) {
        return yield* new Forbidden({ reason: `needs role ${min} in project ${projectId}, caller has ${grant.role}` })
      }
      return grant as ProjectGrant
    })

    /** Whether the caller may run commands on workers for this project (see the class comment). */
    const canExecute = Effect.fn("AccessControl.canExecute")(function* (caller: Principal, projectId: ProjectId) {
      if (!hasScope(caller, "execute")) return false
      const owner = yield* users.byId(caller.userId)
      if (Option.isSome(owner) && owner.value.isAdmin) return true
      const member = yield* projects.member(projectId, caller.userId)
      return Option.isSome(member) && member.value.execute
    })

    const requireExecute = (caller: Principal, projectId: ProjectId) =>
      Effect.flatMap(canExecute(caller, projectId), (ok) =>
        ok
          ? Effect.void
          : forbid(
              hasScope(caller, "execute")
                ? `running commands needs the execute grant in project ${projectId} (a server admin, or a project admin holding it, grants it: kiris member add PROJECT USER --execute)`
                : "running commands needs a key with the execute scope"
            )
      )

    /**
     * Allows or refuses one call. Succeeds with the project the operation runs in when its input
     * names exactly one project (the caller's database scope), none otherwise.
     */
    const check = (
      caller: Principal,
      requirement: Requirement,
      input: unknown
    ): Effect.Effect<Option.Option<ProjectGrant>, Unauthorized | Forbidden | NotFound> =>
      Effect.gen(function* () {
        if (requirement._tag === "Public") return Option.none()
        yield* authenticated(caller)
        if (requirement._tag === "Self") return Option.none()
        if (requirement._tag === "Worker") {
          return caller.kind === "worker"
            ? Option.none()
            : yield* forbid("worker operations need a worker key (kiris key create NAME --scope worker)")
        }
        if (caller.kind === "worker") return yield* forbid("a worker key is for worker operations only")
        if (!hasScope(caller, requirement.scope)) return yield* forbid(`this operation needs a key with the ${requirement.scope} scope`)
        switch (requirement._tag) {
          case "Authenticated":
            return Option.none()
          case "ServerAdmin":
            return caller.isAdmin ? Option.none() : yield* forbid("only server admins may do this")
          case "Project": {
            const ids = unique(select(requirement.projects, input))
            const grants = yield* Effect.forEach(ids, (id) => inProject(caller, id, requirement.role))
            if (requirement.execute !== undefined && select(requirement.execute, input)) {
              yield* Effect.forEach(ids, (id) => requireExecute(caller, id), { discard: true })
            }
            return grants.length === 1 ? Option.some(grants[0]!) : Option.none()
          }
          case "Tasks": {
            const tasks = yield* queue.getMany(select(requirement.taskIds, input))
            const ids = unique(tasks.map((t) => t.projectId))
            yield* Effect.forEach(ids, (id) => inProject(caller, id, requirement.role), { discard: true })
            return Option.none()
          }
        }
      })

    /** `check` against the requirement an RPC declares, for in-process callers (agent tools). */
    const checkRpc = (caller: Principal, tag: string, input: unknown) =>
      Effect.flatMap(
        Option.match(
          Option.flatMap(Option.fromNullable(ClientRpcs.requests.get(tag)), (rpc) => requirementOf(rpc.annotations)),
          {
            onNone: () => Effect.dieMessage(`${tag} declares no access requirement`),
            onSome: Effect.succeed
          }
        ),
        (requirement) => check(caller, requirement, input)
      )

    return { check, checkRpc, canExecute } as const
  }),
  dependencies: [ProjectAccess.Default, ProjectsRepo.Default, UsersRepo.Default, Revocations.Default]
}) {}
