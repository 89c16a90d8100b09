import { Clock, Effect, Option } from "effect"
import { newId } from "../auth/Crypto.js"
import type { Principal } from "../domain/Auth.js"
import { ServerConfig } from "../config/ServerConfig.js"
import { InvalidInput, NotFound } from "../domain/Errors.js"
import type { MessageId, PartId, SessionId } from "../domain/Ids.js"
import {
  Message,
  Part,
  QueuedPrompt,
  type QueuedPromptId,
  SessionHistory,
  SessionInfo,
  type SessionStatus,
  Totals,
  Usage
} from "../domain/Session.js"
import { EventBus } from "../events/EventBus.js"
import { installPrices } from "../llm/Prices.js"
import { CurrentProject } from "../storage/ProjectDb.js"
import { SessionRepo } from "./SessionRepo.js"

export interface NewSession {
  readonly title?: string | undefined
  readonly agent: string
  readonly model: string
  readonly parentId?: SessionId | undefined
}

const titleFrom = (text: string) => {
  const line = text.trim().split("\n")[0] ?? ""
  return line.length > 60 ? `${line.slice(0, 57)}...` : line
}

/**
 * Sessions, their messages and parts, and their queues of waiting prompts, in the project database
 * of the caller's scope. Every change is published on the EventBus. A running turn's parts are
 * written by the orchestrator's part writer, in batches.
 */
export class Session extends Effect.Service<Session>()("kiris/Session", {
  scoped: Effect.gen(function* () {
    const repo = yield* SessionRepo
    const bus = yield* EventBus
    // Usage recorded from here on is priced with the hub's `modelPrices` over the built-in table.
    yield* installPrices((yield* ServerConfig).modelPrices)

    const get = Effect.fn("Session.get")(function* (sessionId: SessionId) {
      const projectId = yield* CurrentProject
      const found = yield* repo.getSession(projectId, sessionId)
      if (Option.isNone(found)) return yield* new NotFound({ entity: "session", id: sessionId })
      return found.value
    })

    const create = Effect.fn("Session.create")(function* (input: NewSession) {
      const projectId = yield* CurrentProject
      if (input.parentId !== undefined) yield* get(input.parentId)
      const now = yield* Clock.currentTimeMillis
      const session = SessionInfo.make({
        id: newId("ses") as SessionId,
        projectId,
        title: input.title?.trim() ?? "",
        agent: input.agent,
        model: input.model,
        parentId: input.parentId ?? null,
        status: "idle",
        createdAt: now,
        updatedAt: now,
        totals: Usage.zero
      })
      yield* repo.insertSession(session)
      yield* bus.publish(projectId, { _tag: "SessionCreated", session })
      return session
    })

    /** Archived sessions only with `includeArchived`. */
    const list = Effect.fn("Session.list")(function* (parentId?: SessionId, includeArchived = false) {
      return yield* repo.listSessions(yield* CurrentProject, parentId, includeArchived)
    })

    const history = Effect.fn("Session.history")(function* (sessionId: SessionId) {
      const session = yield* get(sessionId)
      return SessionHistory.make({ session, messages: yield* repo.history(sessionId) })
    })

    const publishUpdated = Effect.fn("Session.publishUpdated")(function* (sessionId: SessionId) {
      const session = yield* get(sessionId).pipe(Effect.orDie)
      yield* bus.publish(session.projectId, { _tag: "SessionUpdated", session })
      return session
    })

    const setStatus = Effect.fn("Session.setStatus")(function* (sessionId: SessionId, status: SessionStatus) {
      yield* repo.updateSession(sessionId, { status })
      yield* bus.publish(yield* CurrentProject, { _tag: "SessionStatus", sessionId, status })
    })

    /** Adds a finished message's usage to the session's totals. */
    const addUsage = Effect.fn("Session.addUsage")(function* (sessionId: SessionId, usage: Usage) {
      yield* repo.updateSession(sessionId, { addUsage: usage })
      yield* publishUpdated(sessionId)
    })

    /** Stores the user's prompt as a completed message with one text part; names an untitled session after it. */
    const addUserMessage = Effect.fn("Session.addUserMessage")(function* (sessionId: SessionId, text: string) {
      const projectId = yield* CurrentProject
      const session = yield* get(sessionId).pipe(Effect.orDie)
      const now = yield* Clock.currentTimeMillis
      const message = Message.make({
        id: newId("msg") as MessageId,
        sessionId,
        role: "user",
        status: "completed",
        model: null,
        finishReason: null,
        usage: Usage.zero,
        error: null,
        createdAt: now,
        completedAt: now
      })
      const part = Part.make({ id: newId("prt") as PartId, sessionId, messageId: message.id, index: 0, data: { _tag: "text", text } })
      yield* repo.writeBatch(Option.some(message), [part])
      yield* bus.publishAll(projectId, [
        { _tag: "MessageUpdated", message },
        { _tag: "PartUpdated", part }
      ])
      if (session.title === "") {
        yield* repo.updateSession(sessionId, { title: titleFrom(text) })
        yield* publishUpdated(sessionId)
      }
      return message
    })

    const enqueue = Effect.fn("Session.enqueue")(function* (sessionId: SessionId, text: string, caller: Principal) {
      const prompt = QueuedPrompt.make({
        id: newId("qp") as QueuedPromptId,
        sessionId,
        text,
        author: caller.name,
        createdAt: yield* Clock.currentTimeMillis
      })
      yield* repo.insertQueued(prompt, caller)
      yield* bus.publish(yield* CurrentProject, { _tag: "PromptQueued", prompt })
      return prompt
    })

    /** The oldest queued prompt, removed from the queue (announced as started). */
    const takeQueued = Effect.fn("Session.takeQueued")(function* (sessionId: SessionId) {
      const next = yield* repo.takeQueued(sessionId)
      if (Option.isSome(next)) {
        yield* bus.publish(yield* CurrentProject, {
          _tag: "PromptDequeued",
          sessionId,
          promptId: next.value.prompt.id,
          reason: "started"
        })
      }
      return next
    })

    const dequeue = Effect.fn("Session.dequeue")(function* (sessionId: SessionId, promptId: QueuedPromptId) {
      yield* get(sessionId)
      if (!(yield* repo.deleteQueued(sessionId, promptId))) return yield* new NotFound({ entity: "queued prompt", id: promptId })
      yield* bus.publish(yield* CurrentProject, { _tag: "PromptDequeued", sessionId, promptId, reason: "cancelled" })
    })

    const clearQueue = Effect.fn("Session.clearQueue")(function* (sessionId: SessionId) {
      const ids = yield* repo.clearQueued(sessionId)
      yield* bus.publishAll(
        yield* CurrentProject,
        ids.map((promptId) => ({ _tag: "PromptDequeued", sessionId, promptId, reason: "cancelled" }) as const)
      )
    })

    const queue = Effect.fn("Session.queue")(function* (sessionId: SessionId) {
      yield* get(sessionId)
      return yield* repo.listQueued(sessionId)
    })

    const rename = Effect.fn("Session.rename")(function* (sessionId: SessionId, title: string) {
      yield* get(sessionId)
      const trimmed = title.trim()
      if (trimmed === "") return yield* new InvalidInput({ reason: "a session's title cannot be empty" })
      yield* repo.updateSession(sessionId, { title: trimmed })
      return yield* publishUpdated(sessionId)
    })

    const setArchived = Effect.fn("Session.setArchived")(function* (sessionId: SessionId, archived: boolean) {
      yield* get(sessionId)
      yield* repo.updateSession(sessionId, { archived })
      return yield* publishUpdated(sessionId)
    })

    /**
     * Deletes the session and its sub-agents' sessions with everything they hold. The caller has
     * stopped their turns and settled their permission requests (see Orchestrator.deleteSession).
     */
    const remove = Effect.fn("Session.remove")(function* (sessionIds: ReadonlyArray<SessionId>) {
      yield* repo.deleteSessions(sessionIds)
      yield* bus.publishAll(
        yield* CurrentProject,
        sessionIds.map((sessionId) => ({ _tag: "SessionDeleted", sessionId }) as const)
      )
    })

    /** The session and its sub-agents' sessions, at any depth (the session first). */
    const tree = Effect.fn("Session.tree")(function* (sessionId: SessionId) {
      yield* get(sessionId)
      return yield* repo.sessionTree(sessionId)
    })

    const totals = Effect.fn("Session.totals")(function* (sessionId?: SessionId) {
      const session = sessionId === undefined ? null : (yield* get(sessionId)).totals
      return Totals.make({ session, project: yield* repo.projectUsage })
    })

    return {
      create,
      get,
      list,
      history,
      setStatus,
      addUsage,
      addUserMessage,
      enqueue,
      takeQueued,
      dequeue,
      clearQueue,
      queue,
      totals,
      rename,
      setArchived,
      remove,
      tree
    } as const
  }),
  dependencies: [SessionRepo.Default]
}) {}
