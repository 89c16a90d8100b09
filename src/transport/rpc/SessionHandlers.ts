import { Effect } from "effect"
import { SessionRpcs } from "../../domain/rpc/SessionRpcs.js"
import { CurrentPrincipal } from "../../domain/rpc/Middleware.js"
import { Orchestrator } from "../../orchestrator/Orchestrator.js"
import { ProjectAccess } from "../../project/ProjectAccess.js"
import { Session } from "../../session/Session.js"

/** Thin session handlers: viewers read, members create, prompt and cancel. */
export const SessionHandlers = SessionRpcs.toLayer(
  Effect.gen(function* () {
    const access = yield* ProjectAccess
    const sessions = yield* Session
    const orchestrator = yield* Orchestrator
    return SessionRpcs.of({
      "session.create": ({ agent, model, projectId, title }) =>
        access.withProject(projectId, "member")(orchestrator.createSession({ title, agent, model })),
      "session.list": ({ parentId, projectId }) => access.withProject(projectId, "viewer")(sessions.list(parentId)),
      "session.get": ({ projectId, sessionId }) => access.withProject(projectId, "viewer")(sessions.history(sessionId)),
      "session.prompt": ({ mode, projectId, sessionId, text }) =>
        Effect.flatMap(CurrentPrincipal, (caller) =>
          access.withProject(projectId, "member")(orchestrator.prompt(caller, sessionId, text, mode))
        ),
      "session.cancel": ({ clearQueue, projectId, sessionId }) =>
        access.withProject(projectId, "member")(
          Effect.map(orchestrator.cancel(sessionId, clearQueue ?? false), (cancelled) => ({ cancelled }))
        ),
      "session.queue": ({ projectId, sessionId }) => access.withProject(projectId, "viewer")(sessions.queue(sessionId)),
      "session.dequeue": ({ projectId, promptId, sessionId }) =>
        access.withProject(projectId, "member")(sessions.dequeue(sessionId, promptId)),
      "session.totals": ({ projectId, sessionId }) => access.withProject(projectId, "viewer")(sessions.totals(sessionId))
    })
  })
)
