import { SqlClient } from "@effect/sql"
import { Context, Deferred, Effect, FiberMap, Option, Ref } from "effect"
import { ServerConfig } from "../config/ServerConfig.js"
import type { Principal } from "../domain/Auth.js"
import { InvalidInput } from "../domain/Errors.js"
import type { ProjectId, SessionId } from "../domain/Ids.js"
import { type PromptMode, type PromptResult, SessionBusy } from "../domain/Session.js"
import { EventBus } from "../events/EventBus.js"
import { FileService } from "../files/FileService.js"
import { Models } from "../llm/Models.js"
import { Permission } from "../permission/Permission.js"
import { ProjectsRepo } from "../project/ProjectsRepo.js"
import { TaskQueue } from "../queue/TaskQueue.js"
import { Session } from "../session/Session.js"
import { SessionRepo } from "../session/SessionRepo.js"
import { CurrentProject, ProjectDb } from "../storage/ProjectDb.js"
import { agentNames, findAgent } from "./Agents.js"
import { recover } from "./Recovery.js"
import { makeRemoteRunner } from "./RemoteAgent.js"
import { type Active, makeSessionTurns, type Pending } from "./SessionTurns.js"
import { makeSubAgents } from "./SubAgents.js"
import { type TurnOutcome, TurnRunner } from "./TurnRunner.js"

const describe = (e: InvalidInput | { readonly message: string }) => ("reason" in e ? e.reason : e.message)

/** Drops the request's project scope so a turn fiber opens (and holds) its own. */
const detached = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.mapInputContext(
    effect,
    (ctx: Context.Context<R>) => Context.omit(SqlClient.SqlClient, CurrentProject, SqlClient.TransactionConnection)(ctx) as Context.Context<R>
  )

/**
 * Runs agent turns: at most one per session, each in a fiber of a FiberMap owned by this layer.
 * A session's runner fiber runs its turn, then the prompts queued meanwhile, in order, then marks
 * the session idle. Decisions about a session (start, queue, interrupt, cancel, stop) are taken
 * under that session's lock. A prompt steered into a running turn is stored at once and handed to
 * the turn at its next step boundary; one the turn ended without taking gets a turn of its own
 * before the queue moves on. When a turn ends, however it ended, the permission requests it left
 * pending expire. On start, messages a previous process left running are marked `interrupted`
 * (never re-run) and published as such, every request still pending expires, sessions are
 * published idle, and sessions with queued prompts resume them.
 */
export class Orchestrator extends Effect.Service<Orchestrator>()("kiris/Orchestrator", {
  scoped: Effect.gen(function* () {
    const sessions = yield* Session
    const repo = yield* SessionRepo
    const runner = yield* TurnRunner
    const dbs = yield* ProjectDb
    const projects = yield* ProjectsRepo
    const models = yield* Models
    const queue = yield* TaskQueue
    const bus = yield* EventBus
    const config = yield* ServerConfig
    const permission = yield* Permission
    const files = yield* Effect.serviceOption(FileService)
    /** Turns write through the hub's FileService; the edit locks a turn took are released when it ends, however it ends. */
    const withFiles = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Option.isSome(files) ? Effect.provideService(effect, FileService, files.value) : effect
    const releaseFileLocks = (sessionId: SessionId) => (Option.isSome(files) ? files.value.releaseLocks({ sessionId }) : Effect.void)
    const fibers = yield* FiberMap.make<SessionId>()
    const { activeTurn, addSteered, dropSteered, setActive, sizes, takeSteered, withLock } = yield* makeSessionTurns

    /**
     * Under the session's lock: a turn for prompts steered in that no turn took (they are stored
     * already), else the next queued prompt (storing it as the user message), else marks the session idle.
     */
    const takeNextOrIdle = (sessionId: SessionId) =>
      Effect.gen(function* () {
        const untaken = yield* takeSteered(sessionId)
        const last = untaken[untaken.length - 1]
        if (last !== undefined) return Option.some<Pending>({ caller: last.caller })
        const next = yield* sessions.takeQueued(sessionId)
        if (Option.isNone(next)) {
          yield* setActive(sessionId, Option.none())
          yield* sessions.setStatus(sessionId, "idle")
          return Option.none<Pending>()
        }
        yield* sessions.addUserMessage(sessionId, next.value.prompt.text).pipe(Effect.orDie)
        return Option.some<Pending>({ caller: next.value.caller })
      })

    const runTurn = (sessionId: SessionId, pending: Pending, turn: Active) => {
      const outcomeOf = Effect.map(Ref.get(turn.cancelled), (c): "cancelled" | "interrupted" => (c ? "cancelled" : "interrupted"))
      return Effect.gen(function* () {
        const session = yield* sessions.get(sessionId).pipe(Effect.orDie)
        yield* runner.run({
          session,
          caller: pending.caller,
          subAgents,
          interruptedAs: outcomeOf,
          takeSteered: takeSteered(sessionId),
          onDone: (outcome) =>
            Effect.zipRight(
              // The one place a turn's end reaches permissions: whatever it left pending expires.
              outcome.messageId === null
                ? Effect.void
                : permission.expireTurn(session.projectId, outcome.messageId, `the turn ended (${outcome.status}) before the request was answered`),
              pending.done ? Deferred.succeed(pending.done, outcome) : Effect.void
            )
        })
      }).pipe(
        Effect.onInterrupt(() =>
          pending.done
            ? Effect.flatMap(outcomeOf, (status) =>
                Deferred.succeed(pending.done!, { messageId: null, status, answer: "", error: `the turn was ${status}` })
              )
            : Effect.void
        ),
        Effect.ensuring(releaseFileLocks(sessionId))
      )
    }

    /** Forks the session's runner fiber (the caller holds the lock and has stored the user message). */
    const launch = (projectId: ProjectId, sessionId: SessionId, first: Pending) =>
      Effect.gen(function* () {
        const turn: Active = { cancelled: yield* Ref.make(false) }
        yield* setActive(sessionId, Option.some(turn))
        yield* sessions.setStatus(sessionId, "running")
        const loop = Effect.gen(function* () {
          let pending = Option.some(first)
          while (Option.isSome(pending)) {
            yield* runTurn(sessionId, pending.value, turn)
            pending = yield* withLock(sessionId)(takeNextOrIdle(sessionId))
          }
        })
        yield* FiberMap.run(fibers, sessionId, detached(dbs.withProject(projectId)(withFiles(loop))))
      })

    /** Under the session's lock, after its turn was stopped: the next queued prompt starts, or the session goes idle. */
    const startNextOrIdle = (projectId: ProjectId, sessionId: SessionId) =>
      Effect.flatMap(takeNextOrIdle(sessionId), (next) => (Option.isSome(next) ? launch(projectId, sessionId, next.value) : Effect.void))

    /** Stops the running turn (waiting until it has ended and been recorded); false when none runs. */
    const stopTurn = (sessionId: SessionId) =>
      Effect.gen(function* () {
        const turn = yield* activeTurn(sessionId)
        if (Option.isNone(turn)) return false
        yield* Ref.set(turn.value.cancelled, true)
        yield* FiberMap.remove(fibers, sessionId)
        return true
      })

    const prompt = Effect.fn("Orchestrator.prompt")(function* (caller: Principal, sessionId: SessionId, text: string, mode: PromptMode) {
      const projectId = yield* CurrentProject
      yield* sessions.get(sessionId)
      return yield* withLock(sessionId)(
        Effect.gen(function* () {
          const running = Option.isSome(yield* activeTurn(sessionId))
          if (running && mode === "reject") return yield* new SessionBusy({ sessionId })
          if (running && mode === "queue") {
            const queued = yield* sessions.enqueue(sessionId, text, caller)
            return { _tag: "Queued", prompt: queued } as PromptResult
          }
          if (running && mode === "steer") {
            const message = yield* sessions.addUserMessage(sessionId, text).pipe(Effect.orDie)
            addSteered(sessionId, { messageId: message.id, text, caller })
            return { _tag: "Started", messageId: message.id } as PromptResult
          }
          if (running) yield* stopTurn(sessionId)
          const message = yield* sessions.addUserMessage(sessionId, text).pipe(Effect.orDie)
          yield* launch(projectId, sessionId, { caller })
          return { _tag: "Started", messageId: message.id } as PromptResult
        })
      )
    })

    const cancel = Effect.fn("Orchestrator.cancel")(function* (sessionId: SessionId, clearQueue: boolean) {
      const projectId = yield* CurrentProject
      yield* sessions.get(sessionId)
      return yield* withLock(sessionId)(
        Effect.gen(function* () {
          const stopped = yield* stopTurn(sessionId)
          if (clearQueue) yield* Effect.zipRight(sessions.clearQueue(sessionId), takeSteered(sessionId))
          if (stopped) yield* startNextOrIdle(projectId, sessionId)
          return stopped
        })
      )
    })

    /** Under the session's lock: its running turn stopped and its queue dropped; nothing will start it again. */
    const quiesce = (sessionId: SessionId) =>
      withLock(sessionId)(
        Effect.gen(function* () {
          yield* sessions.clearQueue(sessionId)
          yield* takeSteered(sessionId)
          yield* stopTurn(sessionId)
          yield* setActive(sessionId, Option.none())
        })
      )

    /**
     * Deletes a session and its sub-agents' sessions: their running turns are cancelled, their
     * queued prompts dropped and their pending permission requests expired first.
     */
    const deleteSession = Effect.fn("Orchestrator.deleteSession")(function* (sessionId: SessionId) {
      const projectId = yield* CurrentProject
      const ids = yield* sessions.tree(sessionId)
      yield* Effect.forEach(ids, quiesce, { discard: true })
      yield* Effect.forEach(ids, (id) => permission.expireSession(projectId, id, "the session was deleted"), { discard: true })
      yield* sessions.remove(ids)
    })

    /** Cancels every running turn of a project about to be deleted (its queues go with its database). */
    const stopProject = Effect.fn("Orchestrator.stopProject")(function* (projectId: ProjectId) {
      const all = yield* dbs.withProject(projectId)(repo.listSessions(projectId, undefined))
      yield* Effect.forEach(
        all,
        (s) =>
          withLock(s.id)(Effect.zipRight(stopTurn(s.id), setActive(s.id, Option.none()))).pipe(Effect.ensuring(Effect.sync(() => dropSteered(s.id)))),
        { discard: true }
      )
    })

    /**
     * Starts a turn on an idle session and waits for it to end; interrupting the wait cancels the
     * turn. Used by sub-agents, whose child sessions are new.
     */
    const runToCompletion = Effect.fn("Orchestrator.runToCompletion")(function* (caller: Principal, sessionId: SessionId, text: string) {
      const projectId = yield* CurrentProject
      const done = yield* Deferred.make<TurnOutcome>()
      yield* withLock(sessionId)(
        Effect.gen(function* () {
          if (Option.isSome(yield* activeTurn(sessionId))) return yield* new SessionBusy({ sessionId })
          yield* sessions.addUserMessage(sessionId, text).pipe(Effect.orDie)
          yield* launch(projectId, sessionId, { caller, done })
        })
      )
      return yield* Deferred.await(done).pipe(
        Effect.onInterrupt(() => withLock(sessionId)(Effect.zipRight(stopTurn(sessionId), startNextOrIdle(projectId, sessionId))))
      )
    })

    /** Creates a session after checking its agent and model (the project's default model when none is given). */
    const createSession = Effect.fn("Orchestrator.createSession")(function* (input: {
      readonly title?: string | undefined
      readonly agent?: string | undefined
      readonly model?: string | undefined
      readonly parentId?: SessionId | undefined
    }) {
      const agent = input.agent ?? "default"
      if (findAgent(agent) === undefined) {
        return yield* new InvalidInput({ reason: `unknown agent "${agent}"; available: ${agentNames.join(", ")}` })
      }
      const model = yield* models.resolve(input.model).pipe(Effect.mapError((e) => new InvalidInput({ reason: e.message })))
      return yield* sessions.create({ ...input, agent, model: model.id })
    })

    const subAgents = makeSubAgents({
      createChild: (parent, input) =>
        Effect.gen(function* () {
          const parentSession = yield* sessions.get(parent.sessionId)
          return yield* createSession({ ...input, model: input.model ?? parentSession.model, parentId: parent.sessionId })
        }).pipe(Effect.mapError(describe)),
      runLocal: (caller, sessionId, text) => runToCompletion(caller, sessionId, text).pipe(Effect.mapError(describe)),
      runRemote: makeRemoteRunner({ queue, bus, repo, sessions, maxSteps: config.agentMaxSteps })
    })

    yield* recover({
      projects,
      dbs,
      repo,
      bus,
      permission,
      resume: (projectId, sessionId) => withLock(sessionId)(startNextOrIdle(projectId, sessionId))
    })
    /** What the per-session bookkeeping holds (every count is 0 while all sessions are idle). */
    const tracked = Effect.zipWith(sizes, FiberMap.size(fibers), (s, fibers) => ({ ...s, fibers }))
    return { createSession, prompt, cancel, runToCompletion, deleteSession, stopProject, tracked } as const
  }),
  dependencies: [TurnRunner.Default, Session.Default, SessionRepo.Default, ProjectsRepo.Default, Models.Default, Permission.Default]
}) {}
