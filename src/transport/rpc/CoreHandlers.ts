import { Effect, Layer, Option, Stream } from "effect"
import { ApiKeys } from "../../auth/ApiKeys.js"
import { Users } from "../../auth/Users.js"
import { EventRpcs } from "../../domain/rpc/EventRpcs.js"
import { CurrentPrincipal } from "../../domain/rpc/Middleware.js"
import { ProjectRpcs } from "../../domain/rpc/ProjectRpcs.js"
import { UserRpcs } from "../../domain/rpc/UserRpcs.js"
import { EventBus } from "../../events/EventBus.js"
import { Orchestrator } from "../../orchestrator/Orchestrator.js"
import { Presence } from "../../presence/Presence.js"
import { Projects } from "../../project/Projects.js"
import { handlersLayer } from "./HandlersLayer.js"

/** Thin RPC handlers: each reads the caller and calls one service method. */
const ProjectHandlers = handlersLayer(
  ProjectRpcs,
  Effect.gen(function* () {
    const projects = yield* Projects
    const orchestrator = yield* Orchestrator
    const as = <A, E, R>(f: (caller: CurrentPrincipal["Type"]) => Effect.Effect<A, E, R>) => Effect.flatMap(CurrentPrincipal, f)
    return ProjectRpcs.of({
      "project.create": (input) => as((c) => projects.create(c, input)),
      "project.list": () => as((c) => projects.list(c)),
      "project.get": ({ projectId }) => as((c) => projects.get(c, projectId)),
      "project.members": ({ projectId }) => projects.members(projectId),
      "project.addMember": ({ execute, projectId, role, user }) => as((c) => projects.addMember(c, projectId, user, role, execute)),
      "project.removeMember": ({ projectId, user }) => as((c) => projects.removeMember(c, projectId, user)),
      "project.update": ({ description, name, projectId }) => as((c) => projects.update(c, projectId, { name, description })),
      "project.delete": ({ confirm, projectId }) => as((c) => projects.remove(c, projectId, confirm, orchestrator.stopProject(projectId)))
    })
  })
)

const UserHandlers = handlersLayer(
  UserRpcs,
  Effect.gen(function* () {
    const users = yield* Users
    const keys = yield* ApiKeys
    return UserRpcs.of({
      "user.whoami": () => CurrentPrincipal,
      "user.create": (input) => Effect.flatMap(CurrentPrincipal, (c) => users.create(c, input)),
      "user.list": () => Effect.flatMap(CurrentPrincipal, (c) => users.list(c)),
      "key.create": (input) => Effect.flatMap(CurrentPrincipal, (c) => keys.create(c, input)),
      "key.list": () => Effect.flatMap(CurrentPrincipal, (c) => keys.list(c)),
      "key.revoke": ({ id }) => Effect.flatMap(CurrentPrincipal, (c) => keys.revoke(c, id)),
      "user.delete": ({ user }) => Effect.flatMap(CurrentPrincipal, (c) => users.remove(c, user))
    })
  })
)

const EventHandlers = handlersLayer(
  EventRpcs,
  Effect.gen(function* () {
    const bus = yield* EventBus
    const presence = yield* Presence
    return EventRpcs.of({
      // A deleted project's subscriptions end after its ProjectDeleted event. Presence changes
      // (not logged) are merged in after `Ready`.
      // With `since`, logged events after it are replayed before `Ready` (see EventBus.stream).
      "events.subscribe": ({ projectId, since }) =>
        presence.withPresence(
          projectId,
          bus
            .stream(projectId, Option.fromNullable(since))
            .pipe(Stream.takeUntil((item) => item._tag === "Event" && item.event.event._tag === "ProjectDeleted"))
        )
    })
  })
)

export const CoreHandlers = Layer.mergeAll(ProjectHandlers, UserHandlers, EventHandlers)
