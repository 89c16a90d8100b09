import { HttpApiBuilder } from "@effect/platform"
import { Effect, Layer } from "effect"
import { ApiKeys } from "../../auth/ApiKeys.js"
import { Users } from "../../auth/Users.js"
import type { Principal } from "../../domain/Auth.js"
import { Api } from "../../domain/http/Api.js"
import { CurrentPrincipal } from "../../domain/rpc/Middleware.js"
import { Projects } from "../../project/Projects.js"

/** Runs `f` with the authenticated caller. */
const as = <A, E, R>(f: (caller: Principal) => Effect.Effect<A, E, R>) => Effect.flatMap(CurrentPrincipal, f)

const AuthHandlers = HttpApiBuilder.group(Api, "auth", (handlers) =>
  Effect.map(Users, (users) =>
    handlers
      .handle("login", ({ payload }) => users.login(payload.name, payload.password))
      .handle("whoami", () => CurrentPrincipal)
  )
)

const KeysHandlers = HttpApiBuilder.group(Api, "keys", (handlers) =>
  Effect.map(ApiKeys, (keys) =>
    handlers
      .handle("create", ({ payload }) => as((c) => keys.create(c, payload)))
      .handle("list", () => as((c) => keys.list(c)))
      .handle("revoke", ({ path }) => as((c) => keys.revoke(c, path.id)))
  )
)

const UsersHandlers = HttpApiBuilder.group(Api, "users", (handlers) =>
  Effect.map(Users, (users) =>
    handlers
      .handle("list", () => as((c) => users.list(c)))
      .handle("create", ({ payload }) => as((c) => users.create(c, payload)))
  )
)

const ProjectsHandlers = HttpApiBuilder.group(Api, "projects", (handlers) =>
  Effect.map(Projects, (projects) =>
    handlers
      .handle("list", () => as((c) => projects.list(c)))
      .handle("create", ({ payload }) => as((c) => projects.create(c, payload)))
      .handle("get", ({ path }) => as((c) => projects.get(c, path.projectId)))
      .handle("members", ({ path }) => as((c) => projects.members(c, path.projectId)))
      .handle("addMember", ({ path, payload }) => as((c) => projects.addMember(c, path.projectId, payload.user, payload.role)))
      .handle("removeMember", ({ path }) => as((c) => projects.removeMember(c, path.projectId, path.user)))
  )
)

/** Thin REST handlers for auth, keys, users and projects: the same service calls as the RPC handlers. */
export const CoreApiHandlers = Layer.mergeAll(AuthHandlers, KeysHandlers, UsersHandlers, ProjectsHandlers)
