import { Effect } from "effect"
import { CurrentPrincipal } from "../../domain/rpc/Middleware.js"
import { PresenceRpcs } from "../../domain/rpc/PresenceRpcs.js"
import { Presence } from "../../presence/Presence.js"
import { Session } from "../../session/Session.js"
import { ProjectDb } from "../../storage/ProjectDb.js"
import { handlersLayer } from "./HandlersLayer.js"

/**
 * Thin presence handlers: the connection (`clientId`) is the key of the caller's entry. A named
 * session is checked to exist in the project (the middleware opened its database scope).
 */
export const PresenceHandlers = handlersLayer(
  PresenceRpcs,
  Effect.gen(function* () {
    const presence = yield* Presence
    const sessions = yield* Session
    const dbs = yield* ProjectDb
    return PresenceRpcs.of({
      "presence.join": (input, { clientId }) =>
        Effect.gen(function* () {
          if (input.sessionId !== undefined) yield* dbs.withProject(input.projectId)(sessions.get(input.sessionId))
          return yield* presence.join(clientId, yield* CurrentPrincipal, input)
        }),
      "presence.leave": ({ projectId }, { clientId }) => presence.leave(clientId, projectId),
      "presence.heartbeat": ({ projectId }, { clientId }) => presence.heartbeat(clientId, projectId),
      "presence.list": ({ projectId }) => presence.list(projectId),
      "presence.typing": ({ projectId, sessionId }, { clientId }) =>
        presence.typing(clientId, projectId, sessionId, dbs.withProject(projectId)(sessions.get(sessionId)))
    })
  })
)
