import type { SqlClient } from "@effect/sql"
import { Effect, Option } from "effect"
import { hasScope, roleAtLeast, type Principal, type Role } from "../domain/Auth.js"
import { Forbidden, NotFound } from "../domain/Errors.js"
import type { ProjectId } from "../domain/Ids.js"
import type { Project } from "../domain/Project.js"
import { CurrentPrincipal } from "../domain/rpc/Middleware.js"
import { type CurrentProject, ProjectDb } from "../storage/ProjectDb.js"
import { ProjectsRepo } from "./ProjectsRepo.js"

/**
 * Who may do what in a project, and the one door into a project's database: `withProject` checks
 * the caller's role, then runs the effect with the project's `SqlClient` provided fiber-locally.
 * Server admins act as owners everywhere; a key without the `write` scope acts at most as a viewer.
 */
export class ProjectAccess extends Effect.Service<ProjectAccess>()("kiris/ProjectAccess", {
  effect: Effect.gen(function* () {
    const repo = yield* ProjectsRepo
    const dbs = yield* ProjectDb

    const roleOf = Effect.fn("ProjectAccess.roleOf")(function* (caller: Principal, projectId: ProjectId) {
      const project = yield* repo.get(projectId)
      if (Option.isNone(project)) return yield* new NotFound({ entity: "project", id: projectId })
      let role: Option.Option<Role> = caller.isAdmin
        ? Option.some("owner")
        : Option.map(yield* repo.member(projectId, caller.userId), (m) => m.role)
      if (Option.isSome(role) && caller.kind !== "user" && !hasScope(caller, "write")) role = Option.some("viewer")
      // Unknown and invisible projects look the same to outsiders.
      if (Option.isNone(role)) return yield* new NotFound({ entity: "project", id: projectId })
      return { project: project.value, role: role.value }
    })

    /** Fails with NotFound / Forbidden unless the caller holds at least `min` in the project. */
    const authorize = Effect.fn("ProjectAccess.authorize")(function* (caller: Principal, projectId: ProjectId, min: Role) {
      const access = yield* roleOf(caller, projectId)
      if (!roleAtLeast(access.role, min)) {
        return yield* new Forbidden({ reason: `needs role ${min} in project ${projectId}, caller has ${access.role}` })
      }
      return access as { readonly project: Project; readonly role: Role }
    })

    /** Authorizes the current caller, then runs `effect` inside the project's database scope. */
    const withProject =
      (projectId: ProjectId, min: Role) =>
      <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        Effect.flatMap(CurrentPrincipal, (caller) => authorize(caller, projectId, min)).pipe(
          Effect.zipRight(dbs.withProject(projectId)(effect))
        ) as Effect.Effect<A, E | NotFound | Forbidden, Exclude<Exclude<R, SqlClient.SqlClient>, CurrentProject> | CurrentPrincipal>

    return { roleOf, authorize, withProject } as const
  }),
  dependencies: [ProjectsRepo.Default]
}) {}
