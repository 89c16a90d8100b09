import { SqlClient } from "@effect/sql"
import { Clock, Effect, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { UsersRepo } from "../auth/UsersRepo.js"
import { Cluster } from "../cluster/Cluster.js"
import { ServerConfig } from "../config/ServerConfig.js"
import { hasScope, type Principal, type Role } from "../domain/Auth.js"
import { newId } from "../auth/Crypto.js"
import { ConfirmMismatch, Forbidden, InvalidInput, NotFound } from "../domain/Errors.js"
import type { ProjectId } from "../domain/Ids.js"
import { type CreateProject, Project } from "../domain/Project.js"
import { EventBus } from "../events/EventBus.js"
import { projectDir, ProjectDb } from "../storage/ProjectDb.js"
import { Revocations } from "../auth/Revocations.js"
import { ProjectAccess } from "./ProjectAccess.js"
import { ProjectsRepo } from "./ProjectsRepo.js"
import { admitWorkspace, warnUnreachableWorkspaces } from "./WorkspacePolicy.js"

const isWithin = (root: string, target: string) => {
  const rel = path.relative(root, target)
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel))
}

/** Records an action in the project's own database (its activity log). */
const logActivity = (actor: Principal, action: string, detail: unknown) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const at = yield* Clock.currentTimeMillis
    yield* sql`INSERT INTO activity (at, actor, action, detail) VALUES (${at}, ${actor.name}, ${action}, ${JSON.stringify(detail)})`
  }).pipe(Effect.orDie)

/** Projects and their members. Root rows and the project's own database are written in separate steps. */
export class Projects extends Effect.Service<Projects>()("kiris/Projects", {
  effect: Effect.gen(function* () {
    const repo = yield* ProjectsRepo
    const users = yield* UsersRepo
    const access = yield* ProjectAccess
    const dbs = yield* ProjectDb
    const bus = yield* EventBus
    const config = yield* ServerConfig
    const revocations = yield* Revocations
    const cluster = yield* Cluster

    // Hubs sharing a database must see the same workspaces: say at start which ones this hub cannot.
    if (cluster.backend === "pg") yield* Effect.flatMap(repo.listAll, warnUnreachableWorkspaces)

    const create = Effect.fn("Projects.create")(function* (caller: Principal, input: CreateProject) {
      if (caller.kind === "worker" || !hasScope(caller, "write")) return yield* new Forbidden({ reason: "creating a project needs the write scope" })
      const id = newId("prj") as ProjectId
      let workspace = path.join(projectDir(config.dataDir, id), "files")
      if (input.workspace !== undefined) workspace = yield* admitWorkspace(caller, input.workspace, config)
      yield* Effect.sync(() => fs.mkdirSync(workspace, { recursive: true }))
      const project = Project.make({ id, name: input.name, description: input.description, workspace, createdAt: yield* Clock.currentTimeMillis })
      yield* repo.insert(project, caller.userId)
      yield* dbs.withProject(id)(logActivity(caller, "project.create", { name: project.name }))
      yield* bus.publish(id, { _tag: "ProjectCreated", project })
      return Project.make({ ...project, role: "owner" })
    })

    /** Server admins see every project, as owners (ProjectAccess treats them so); a key naming projects sees those. */
    const list = (caller: Principal) =>
      Effect.map(
        caller.isAdmin ? Effect.map(repo.listAll, (all) => all.map((p) => Project.make({ ...p, role: "owner" }))) : repo.listFor(caller.userId),
        (all) => (caller.projects === undefined ? all : all.filter((p) => caller.projects!.includes(p.id)))
      )

    /** The callers of these were authorized by AccessControl for the project's declared role. */
    const get = Effect.fn("Projects.get")(function* (caller: Principal, id: ProjectId) {
      const { project, role } = yield* access.roleOf(caller, id)
      return Project.make({ ...project, role })
    })

    const members = (id: ProjectId) => repo.members(id)

    const resolveUser = (name: string) =>
      Effect.flatMap(users.byName(name), (found) =>
        Option.isSome(found)
          ? Effect.succeed(found.value.user)
          : Effect.flatMap(users.byId(name), (byId) =>
              Option.isSome(byId) ? Effect.succeed(byId.value) : new NotFound({ entity: "user", id: name })
            )
      )

    /**
     * Adds a member or changes their role and, with `execute`, their `execute` grant. Only owners make
     * owners; the grant is given by server admins, or by project admins who hold it themselves.
     */
    const addMember = Effect.fn("Projects.addMember")(function* (
      caller: Principal,
      id: ProjectId,
      userName: string,
      role: Role,
      execute?: boolean | undefined
    ) {
      const mine = yield* access.roleOf(caller, id)
      if (role === "owner" && mine.role !== "owner") return yield* new Forbidden({ reason: "only owners make owners" })
      if (execute === true && !caller.isAdmin) {
        const self = yield* repo.member(id, caller.userId)
        if (Option.isNone(self) || !self.value.execute) {
          return yield* new Forbidden({ reason: "only server admins, or project admins holding the execute grant, grant it" })
        }
      }
      const user = yield* resolveUser(userName)
      const member = yield* repo.upsertMember(id, user.id, role, execute)
      yield* dbs.withProject(id)(logActivity(caller, "member.add", { user: user.name, role, execute: member.execute }))
      yield* bus.publish(id, { _tag: "MemberAdded", member })
      yield* revocations.publish({ _tag: "Member", projectId: id, userId: user.id })
      return member
    })

    const removeMember = Effect.fn("Projects.removeMember")(function* (caller: Principal, id: ProjectId, userName: string) {
      const mine = yield* access.roleOf(caller, id)
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
      yield* revocations.publish({ _tag: "Member", projectId: id, userId: user.id })
    })

    /** Changes a project's name or description (owners; AccessControl checked the role). */
    const update = Effect.fn("Projects.update")(function* (
      caller: Principal,
      id: ProjectId,
      fields: { readonly name?: string | undefined; readonly description?: string | undefined }
    ) {
      const { project, role } = yield* access.roleOf(caller, id)
      if (role !== "owner") return yield* new Forbidden({ reason: "only owners change a project" })
      const name = fields.name?.trim()
      if (name === "") return yield* new InvalidInput({ reason: "a project's name cannot be empty" })
      if (name === undefined && fields.description === undefined)
        return yield* new InvalidInput({ reason: "nothing to change: give a name or a description" })
      yield* repo.update(id, { name, description: fields.description })
      const updated = Project.make({ ...project, name: name ?? project.name, description: fields.description ?? project.description })
      yield* dbs.withProject(id)(logActivity(caller, "project.update", { name: updated.name, description: updated.description }))
      yield* bus.publish(id, { _tag: "ProjectUpdated", project: updated })
      return Project.make({ ...updated, role })
    })

    /**
     * Deletes a project once its owner repeats its name in `confirm`: its root rows, its database
     * file and its managed workspace (`<data-dir>/projects/<id>`). A workspace chosen outside that
     * directory is the user's and stays. `stopWork` cancels the project's running turns.
     * Event subscriptions on the project end after its ProjectDeleted event; later calls get NotFound.
     */
    const remove = Effect.fn("Projects.remove")(function* <E, R>(
      caller: Principal,
      id: ProjectId,
      confirm: string,
      stopWork: Effect.Effect<void, E, R>
    ) {
      const { project, role } = yield* access.roleOf(caller, id)
      if (role !== "owner") return yield* new Forbidden({ reason: "only owners delete a project" })
      if (confirm !== project.name) {
        return yield* new ConfirmMismatch({
          entity: "project",
          id,
          reason: `confirm must repeat the project's name exactly (${JSON.stringify(project.name)})`
        })
      }
      // Rows first: from here on new calls get NotFound, so no turn starts while running ones stop.
      yield* repo.remove(id)
      yield* stopWork
      yield* bus.publish(id, { _tag: "ProjectDeleted", projectId: id })
      yield* dbs.drop(id)
      const dir = projectDir(config.dataDir, project.id)
      yield* Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      yield* Effect.logInfo("project deleted", {
        project: id,
        name: project.name,
        by: caller.name,
        keptWorkspace: isWithin(dir, project.workspace) ? null : project.workspace
      })
    })

    return { create, list, get, members, addMember, removeMember, update, remove } as const
  }),
  dependencies: [ProjectsRepo.Default, UsersRepo.Default, ProjectAccess.Default, Revocations.Default]
}) {}
