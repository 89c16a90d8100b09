import { SqlClient } from "@effect/sql"
import { Effect, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { UsersRepo } from "../auth/UsersRepo.js"
import { ServerConfig } from "../config/ServerConfig.js"
import { hasScope, type Principal, type Role } from "../domain/Auth.js"
import { newId } from "../auth/Crypto.js"
import { Forbidden, InvalidInput, NotFound } from "../domain/Errors.js"
import type { ProjectId } from "../domain/Ids.js"
import { type CreateProject, Project } from "../domain/Project.js"
import { EventBus } from "../events/EventBus.js"
import { projectDir, ProjectDb } from "../storage/ProjectDb.js"
import { ProjectAccess } from "./ProjectAccess.js"
import { ProjectsRepo } from "./ProjectsRepo.js"

/** Records an action in the project's own database (its activity log). */
const logActivity = (actor: Principal, action: string, detail: unknown) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`INSERT INTO activity (at, actor, action, detail) VALUES (${Date.now()}, ${actor.name}, ${action}, ${JSON.stringify(detail)})`
  ).pipe(Effect.orDie, Effect.asVoid)

/** Projects and their members. Root rows and the project's own database are written in separate steps. */
export class Projects extends Effect.Service<Projects>()("kiris/Projects", {
  effect: Effect.gen(function* () {
    const repo = yield* ProjectsRepo
    const users = yield* UsersRepo
    const access = yield* ProjectAccess
    const dbs = yield* ProjectDb
    const bus = yield* EventBus
    const config = yield* ServerConfig

    const create = Effect.fn("Projects.create")(function* (caller: Principal, input: CreateProject) {
      if (caller.kind === "worker" || !hasScope(caller, "write")) return yield* new Forbidden({ reason: "creating a project needs the write scope" })
      const id = newId("prj") as ProjectId
      let workspace = path.join(projectDir(config.dataDir, id), "files")
      if (input.workspace !== undefined) {
        workspace = path.resolve(input.workspace)
        if (!fs.existsSync(workspace) || !fs.statSync(workspace).isDirectory()) {
          return yield* new InvalidInput({ reason: `workspace is not a directory: ${input.workspace}` })
        }
      }
      yield* Effect.sync(() => fs.mkdirSync(workspace, { recursive: true }))
      const project = Project.make({ id, name: input.name, description: input.description, workspace, createdAt: Date.now() })
      yield* repo.insert(project, caller.userId)
      yield* dbs.withProject(id)(logActivity(caller, "project.create", { name: project.name }))
      yield* bus.publish(id, { _tag: "ProjectCreated", project })
      return Project.make({ ...project, role: "owner" })
    })

    /** Server admins see every project, as owners (ProjectAccess treats them so). */
    const list = (caller: Principal) =>
      caller.isAdmin
        ? Effect.map(repo.listAll, (all) => all.map((p) => Project.make({ ...p, role: "owner" })))
        : repo.listFor(caller.userId)

    const get = Effect.fn("Projects.get")(function* (caller: Principal, id: ProjectId) {
      const { project, role } = yield* access.authorize(caller, id, "viewer")
      return Project.make({ ...project, role })
    })

    const members = Effect.fn("Projects.members")(function* (caller: Principal, id: ProjectId) {
      yield* access.authorize(caller, id, "viewer")
      return yield* repo.members(id)
    })

    const resolveUser = (name: string) =>
      Effect.flatMap(users.byName(name), (found) =>
        Option.isSome(found)
          ? Effect.succeed(found.value.user)
          : Effect.flatMap(users.byId(name), (byId) => (Option.isSome(byId) ? Effect.succeed(byId.value) : new NotFound({ entity: "user", id: name })))
      )

    const addMember = Effect.fn("Projects.addMember")(function* (caller: Principal, id: ProjectId, userName: string, role: Role) {
      const mine = yield* access.authorize(caller, id, "admin")
      if (role === "owner" && mine.role !== "owner") return yield* new Forbidden({ reason: "only owners make owners" })
      const user = yield* resolveUser(userName)
      const member = yield* repo.upsertMember(id, user.id, role)
      yield* dbs.withProject(id)(logActivity(caller, "member.add", { user: user.name, role }))
      yield* bus.publish(id, { _tag: "MemberAdded", member })
      return member
    })

    const removeMember = Effect.fn("Projects.removeMember")(function* (caller: Principal, id: ProjectId, userName: string) {
      const mine = yield* access.authorize(caller, id, "admin")
      const user = yield* resolveUser(userName)
      const existing = yield* repo.member(id, user.id)
      if (Option.isNone(existing)) return yield* new NotFound({ entity: "member", id: userName })
      if (existing.value.role === "owner") {
        if (mine.role !== "owner") return yield* new Forbidden({ reason: "only owners remove owners" })
        if ((yield* repo.ownerCount(id)) <= 1) return yield* new InvalidInput({ reason: "a project keeps at least one owner" })
      }
      yield* repo.removeMember(id, user.id)
      yield* dbs.withProject(id)(logActivity(caller, "member.remove", { user: user.name }))
      yield* bus.publish(id, { _tag: "MemberRemoved", userId: user.id })
    })

    return { create, list, get, members, addMember, removeMember } as const
  }),
  dependencies: [ProjectsRepo.Default, UsersRepo.Default, ProjectAccess.Default]
}) {}
