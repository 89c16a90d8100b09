import { Effect } from "effect"
import { SessionRpcs } from "../../domain/rpc/SessionRpcs.js"
import { CurrentPrincipal } from "../../domain/rpc/Middleware.js"
import { Orchestrator } from "../../orchestrator/Orchestrator.js"
import { Session } from "../../session/Session.js"
import { ProjectDb } from "../../storage/ProjectDb.js"
import { handlersLayer } from "./HandlersLayer.js"

/**
 * Thin session handlers. The auth middleware has checked the caller and opened the project's
 * database scope; `inProject` only states that scope in the types (it is a no-op inside it).
 */
export const SessionHandlers = handlersLayer(
  SessionRpcs,
  Effect.gen(function* () {
    const dbs = yield* ProjectDb
    const sessions = yield* Session
    const orchestrator = yield* Orchestrator
    const inProject = dbs.withProject
    return SessionRpcs.of({
      "session.create": ({ agent, model, projectId, title }) => inProject(projectId)(orchestrator.createSession({ title, agent, model })),
      "session.list": ({ includeArchived, parentId, projectId }) => inProject(projectId)(sessions.list(parentId, includeArchived ?? false)),
      "session.get": ({ projectId, sessionId }) => inProject(projectId)(sessions.history(sessionId)),
      "session.prompt": ({ mode, projectId, sessionId, text }) =>
        Effect.flatMap(CurrentPrincipal, (caller) => inProject(projectId)(orchestrator.prompt(caller, sessionId, text, mode))),
      "session.cancel": ({ clearQueue, projectId, sessionId }) =>
        inProject(projectId)(Effect.map(orchestrator.cancel(sessionId, clearQueue ?? false), (cancelled) => ({ cancelled }))),
      "session.queue": ({ projectId, sessionId }) => inProject(projectId)(sessions.queue(sessionId)),
      "session.dequeue": ({ projectId, promptId, sessionId }) => inProject(projectId)(sessions.dequeue(sessionId, promptId)),
      "session.totals": ({ projectId, sessionId }) => inProject(projectId)(sessions.totals(sessionId)),
      "session.rename": ({ projectId, sessionId, title }) => inProject(projectId)(sessions.rename(sessionId, title)),
      "session.archive": ({ archived, projectId, sessionId }) => inProject(projectId)(sessions.setArchived(sessionId, archived ?? true)),
      "session.delete": ({ projectId, sessionId }) => inProject(projectId)(orchestrator.deleteSession(sessionId))
    })
  })
)
