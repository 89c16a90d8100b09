import { Effect, Option } from "effect"
import { hasScope, type Principal, type Role } from "../domain/Auth.js"
import { NotFound } from "../domain/Errors.js"
import type { ProjectId } from "../domain/Ids.js"
import { ProjectsRepo } from "./ProjectsRepo.js"

/**
 * A caller's role in a project: server admins act as owners everywhere; a key without the `write`
 * scope acts at most as a viewer; non-members get `NotFound`, like an unknown project, so that
 * outsiders cannot tell the two apart. AccessControl compares it with what an operation needs.
 */
export class ProjectAccess extends Effect.Service<ProjectAccess>()("kiris/ProjectAccess", {
  effect: Effect.gen(function* () {
    const repo = yield* ProjectsRepo

    const roleOf = Effect.fn("ProjectAccess.roleOf")(function* (caller: Principal, projectId: ProjectId) {
      const project = yield* repo.get(projectId)
      if (Option.isNone(project)) return yield* new NotFound({ entity: "project", id: projectId })
      let role: Option.Option<Role> = caller.isAdmin ? Option.some("owner") : Option.map(yield* repo.member(projectId, caller.userId), (m) => m.role)
      if (Option.isSome(role) && caller.kind !== "user" && !hasScope(caller, "write")) role = Option.some("viewer")
      if (Option.isNone(role)) return yield* new NotFound({ entity: "project", id: projectId })
      return { project: project.value, role: role.value }
    })

    return { roleOf } as const
  }),
  dependencies: [ProjectsRepo.Default]
}) {}
