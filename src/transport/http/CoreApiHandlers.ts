import { HttpApiBuilder } from "@effect/platform"
import { Effect, Layer } from "effect"
import { ApiKeys } from "../../auth/ApiKeys.js"
import { Users } from "../../auth/Users.js"
import { Api } from "../../domain/http/Api.js"
import { CurrentPrincipal } from "../../domain/rpc/Middleware.js"
import { InvalidInput } from "../../domain/Errors.js"
import { Orchestrator } from "../../orchestrator/Orchestrator.js"
import { Projects } from "../../project/Projects.js"
import { Session } from "../../session/Session.js"
import { ProjectDb } from "../../storage/ProjectDb.js"
import { makeHttpAccess } from "./HttpAccess.js"

const AuthHandlers = HttpApiBuilder.group(Api, "auth", (handlers) =>
  Effect.gen(function* () {
    const users = yield* Users
    const access = (yield* makeHttpAccess)("auth", "whoami")
    return (
      handlers
        .handle("login", ({ payload }) => users.login(payload.name, payload.password))
        // `Self` refuses only unknown credentials (Unauthorized), never with Forbidden or NotFound.
        .handle("whoami", () => access({}, () => CurrentPrincipal).pipe(Effect.catchTags({ Forbidden: Effect.die, NotFound: Effect.die })))
    )
  })
)

const KeysHandlers = HttpApiBuilder.group(Api, "keys", (handlers) =>
  Effect.gen(function* () {
    const keys = yield* ApiKeys
    const access = yield* makeHttpAccess
    return handlers
      .handle("create", ({ payload }) => access("keys", "create")(payload, (c) => keys.create(c, payload)))
      .handle("list", () => access("keys", "list")({}, (c) => keys.list(c)))
      .handle("revoke", ({ path }) => access("keys", "revoke")(path, (c) => keys.revoke(c, path.id)))
  })
)

const UsersHandlers = HttpApiBuilder.group(Api, "users", (handlers) =>
  Effect.gen(function* () {
    const users = yield* Users
    const access = yield* makeHttpAccess
    return handlers
      .handle("list", () => access("users", "list")({}, (c) => users.list(c)))
      .handle("create", ({ payload }) => access("users", "create")(payload, (c) => users.create(c, payload)))
      .handle("delete", ({ path }) => access("users", "delete")(path, (c) => users.remove(c, path.user)))
  })
)

const ProjectsHandlers = HttpApiBuilder.group(Api, "projects", (handlers) =>
  Effect.gen(function* () {
    const projects = yield* Projects
    const sessions = yield* Session
    const orchestrator = yield* Orchestrator
    // The access check opened the project's database scope; `inProject` states it in the types.
    const inProject = (yield* ProjectDb).withProject
    const access = yield* makeHttpAccess
    return handlers
      .handle("list", () => access("projects", "list")({}, (c) => projects.list(c)))
      .handle("create", ({ payload }) => access("projects", "create")(payload, (c) => projects.create(c, payload)))
      .handle("get", ({ path }) => access("projects", "get")(path, (c) => projects.get(c, path.projectId)))
      .handle("members", ({ path }) => access("projects", "members")(path, () => projects.members(path.projectId)))
      .handle("addMember", ({ path, payload }) =>
        access("projects", "addMember")({ ...payload, ...path }, (c) =>
          projects.addMember(c, path.projectId, payload.user, payload.role, payload.execute)
        )
      )
      .handle("removeMember", ({ path }) => access("projects", "removeMember")(path, (c) => projects.removeMember(c, path.projectId, path.user)))
      .handle("update", ({ path, payload }) =>
        access("projects", "update")({ ...payload, ...path }, (c) =>
          projects.update(c, path.projectId, { name: payload.name, description: payload.description })
        )
      )
      .handle("delete", ({ path, payload }) =>
        access("projects", "delete")({ ...payload, ...path }, (c) =>
          projects.remove(c, path.projectId, payload.confirm, orchestrator.stopProject(path.projectId))
        )
      )
      .handle("sessions", ({ path, urlParams }) =>
        access("projects", "sessions")({ ...urlParams, ...path }, () =>
          inProject(path.projectId)(sessions.list(undefined, urlParams.includeArchived ?? false))
        )
      )
      .handle("updateSession", ({ path, payload }) =>
        access("projects", "updateSession")({ ...payload, ...path }, () =>
          inProject(path.projectId)(
            Effect.gen(function* () {
              if (payload.title === undefined && payload.archived === undefined) {
                return yield* new InvalidInput({ reason: "nothing to change: give a title or archived" })
              }
              let session = yield* sessions.get(path.sessionId)
              if (payload.title !== undefined) session = yield* sessions.rename(path.sessionId, payload.title)
              if (payload.archived !== undefined) session = yield* sessions.setArchived(path.sessionId, payload.archived)
              return session
            })
          )
        )
      )
      .handle("deleteSession", ({ path }) =>
        access("projects", "deleteSession")(path, () => inProject(path.projectId)(orchestrator.deleteSession(path.sessionId)))
      )
  })
)

/** Thin REST handlers for auth, keys, users, projects and their sessions: the same service calls as the RPC handlers. */
export const CoreApiHandlers = Layer.mergeAll(AuthHandlers, KeysHandlers, UsersHandlers, ProjectsHandlers)
