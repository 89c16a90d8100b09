import { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { Clock, Context, Deferred, Duration, Effect, FiberMap, Option, Ref, Schedule, Stream } from "effect"
import { Cluster } from "../cluster/Cluster.js"
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
import { makePgClient } from "../storage/Pg.js"
import { outsideTransaction, RootDb } from "../storage/RootDb.js"
import { agentNames, findAgent } from "./Agents.js"
import {
  decodeSignal,
  encodeSignal,
  HEARTBEAT_EVERY,
  LOCK_CONNECTIONS,
  lockSession,
  projectsWithExpiredRuns,
  RUN_TTL,
  type SessionSignal,
  SWEEP_EVERY
} from "./CrossHub.js"
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
 *
 * Hubs sharing a PostgreSQL database (CrossHub) run each session's decisions under the session's
 * advisory lock as well (held by a transaction on a connection kept for locks, while the decision's
 * own writes commit one by one on the project's database). The hub running a session's
 * turns holds its `session_runs` row (written at launch, renewed by the hub's heartbeat, deleted
 * when the session goes idle). A prompt reaching another hub meanwhile is queued in the database,
 * where the running hub takes it after its turn; a cancel there is signalled to the running hub
 * (`kiris_sessions`). A hub that stops renewing its rows is gone: another hub's sweeper marks its
 * turns `interrupted` and resumes their queues, and start-up recovery touches only sessions no
 * live hub runs.
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
    const cluster = yield* Cluster
    const root = yield* RootDb
    const files = yield* Effect.serviceOption(FileService)
    /** Turns write through the hub's FileService; the edit locks a turn took are released when it ends, however it ends. */
    const withFiles = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Option.isSome(files) ? Effect.provideService(effect, FileService, files.value) : effect
    const releaseFileLocks = (sessionId: SessionId) => (Option.isSome(files) ? files.value.releaseLocks({ sessionId }) : Effect.void)
    const turns = yield* makeSessionTurns
    const { activeProjects, activeTurn, addSteered, dropSteered, setActive, sizes, takeSteered } = turns
    /** Whether other hubs share the database (and so the sessions). */
    const shared = cluster.backend === "pg"
    /** Connections that only hold sessions' advisory locks (the locked work runs on the project's own). */
    const lockSql = Option.isSome(cluster.databaseUrl)
      ? yield* makePgClient(cluster.databaseUrl.value, LOCK_CONNECTIONS).pipe(Effect.orDie)
      : undefined
    const me = cluster.hubId
    const runExpiry = Effect.map(Clock.currentTimeMillis, (now) => now + Duration.toMillis(RUN_TTL))

    /** On shutdown (after the runners below were stopped): this hub's runner rows are handed over at once. */
    if (shared) {
      yield* Effect.addFinalizer(() =>
        Effect.flatMap(activeProjects, (ids) =>
          Effect.forEach(ids, (id) => dbs.withProject(id)(repo.renewRuns(me, 0)).pipe(Effect.catchAllCause(Effect.logWarning)), {
            discard: true
          })
        )
      )
    }
    const fibers = yield* FiberMap.make<SessionId>()

    /**
     * Runs `self` holding the session's lock: this hub's, and with a shared database also the
     * session's advisory lock, held by a transaction of its own meanwhile. `self` runs outside that
     * transaction, on the project's database, so what it writes is committed (and what it publishes
     * true) before the lock passes on.
     */
    const withLock =
      (sessionId: SessionId) =>
      <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | CurrentProject> =>
        turns.withLock(sessionId)(
          lockSql === undefined
            ? self
            : Effect.flatMap(CurrentProject, (projectId) =>
                lockSql.withTransaction(Effect.zipRight(lockSession(lockSql, projectId, sessionId), outsideTransaction(self)))
              ).pipe(Effect.catchIf((e): e is SqlError => e instanceof SqlError, Effect.die))
        )

    /** Sends `s` to the hubs (pg_notify: PostgreSQL's NOTIFY statement takes no bound payload). */
    const signal = (s: SessionSignal) =>
      lockSql === undefined
        ? Effect.void
        : lockSql`SELECT pg_notify('kiris_sessions', ${encodeSignal(s)})`.pipe(
            Effect.catchAllCause((cause) => Effect.logWarning("signalling the hub running a session failed", { cause }))
          )

    /**
     * Under the session's lock: the session's turn was running on a hub that is gone (or on a
     * previous life of this one): its running messages are marked `interrupted` and published, its
     * pending requests expire, and its runner row goes. The caller decides what runs next.
     */
    const reclaim = (projectId: ProjectId, sessionId: SessionId) =>
      Effect.gen(function* () {
        const interrupted = yield* repo.interruptSession(sessionId)
        if (interrupted.messages.length > 0) {
          yield* Effect.logInfo(`marked ${interrupted.messages.length} running message(s) of a stopped hub interrupted`, {
            project: projectId,
            session: sessionId
          })
        }
        yield* bus.publishAll(projectId, [
          ...interrupted.parts.map((part) => ({ _tag: "PartUpdated", part }) as const),
          ...interrupted.messages.map((message) => ({ _tag: "MessageUpdated", message }) as const)
        ])
        yield* permission.expireSession(projectId, sessionId, "the hub running the turn stopped before the request was answered")
        yield* repo.deleteRun(sessionId)
      })

    /**
     * Under the session's lock, for a session with no turn running here: where its turn runs. A
     * live hub's row means `Elsewhere`; a row whose hub is gone is reclaimed first (`reclaimed`).
     */
    const runnerOf = (projectId: ProjectId, sessionId: SessionId) =>
      Effect.gen(function* () {
        if (!shared) return { _tag: "Free", reclaimed: false } as const
        const run = yield* repo.getRun(sessionId)
        if (Option.isNone(run)) return { _tag: "Free", reclaimed: false } as const
        const now = yield* Clock.currentTimeMillis
        if (run.value.hubId !== me && run.value.expiresAt >= now) return { _tag: "Elsewhere", hubId: run.value.hubId } as const
        yield* reclaim(projectId, sessionId)
        return { _tag: "Free", reclaimed: true } as const
      })

    /**
     * Under the session's lock: a turn for prompts steered in that no turn took (they are stored
     * already), else the next queued prompt (storing it as the user message), else marks the session idle.
     */
    const takeNextOrIdle = (sessionId: SessionId) =>
      Effect.gen(function* () {
        if (shared) {
          const run = yield* repo.getRun(sessionId)
          if (Option.isSome(run) && run.value.hubId !== me) {
            // another hub took the session over (this one looked gone): it runs what is queued
            yield* takeSteered(sessionId)
            yield* setActive(sessionId, Option.none())
            return Option.none<Pending>()
          }
        }
        const untaken = yield* takeSteered(sessionId)
        const last = untaken[untaken.length - 1]
        if (last !== undefined) return Option.some<Pending>({ caller: last.caller })
        const next = yield* sessions.takeQueued(sessionId)
        if (Option.isNone(next)) {
          yield* setActive(sessionId, Option.none())
          yield* sessions.setStatus(sessionId, "idle")
          if (shared) yield* repo.deleteRun(sessionId)
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
        const turn: Active = { projectId, cancelled: yield* Ref.make(false) }
        yield* setActive(sessionId, Option.some(turn))
        yield* sessions.setStatus(sessionId, "running")
        if (shared) yield* repo.claimRun(sessionId, me, yield* runExpiry)
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
      // Refusals are returned from the locked section (which commits), then failed.
      const result = yield* withLock(sessionId)(
        Effect.gen(function* () {
          const running = Option.isSome(yield* activeTurn(sessionId))
          if (!running) {
            const runner = yield* runnerOf(projectId, sessionId)
            if (runner._tag === "Elsewhere") {
              // Running on another hub: queued in the database, where that hub takes it after its turn.
              if (mode === "reject") return "busy" as const
              const queued = yield* sessions.enqueue(sessionId, text, caller)
              if (mode === "interrupt") yield* signal({ op: "cancel", hubId: runner.hubId, projectId, sessionId })
              return { _tag: "Queued", prompt: queued } as PromptResult
            }
            if (runner.reclaimed && (yield* repo.listQueued(sessionId)).length > 0) {
              // The prompts queued for the gone hub's turn come first.
              const queued = yield* sessions.enqueue(sessionId, text, caller)
              yield* startNextOrIdle(projectId, sessionId)
              return { _tag: "Queued", prompt: queued } as PromptResult
            }
          }
          if (running && mode === "reject") return "busy" as const
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
      if (result === "busy") return yield* new SessionBusy({ sessionId })
      return result
    })

    const cancel = Effect.fn("Orchestrator.cancel")(function* (sessionId: SessionId, clearQueue: boolean) {
      const projectId = yield* CurrentProject
      yield* sessions.get(sessionId)
      return yield* withLock(sessionId)(
        Effect.gen(function* () {
          const stopped = yield* stopTurn(sessionId)
          if (clearQueue) yield* Effect.zipRight(sessions.clearQueue(sessionId), takeSteered(sessionId))
          if (stopped) {
            yield* startNextOrIdle(projectId, sessionId)
            return true
          }
          const runner = yield* runnerOf(projectId, sessionId)
          if (runner._tag === "Elsewhere") {
            // The running hub stops the turn and goes on with the queue (cleared above when asked).
            yield* signal({ op: "cancel", hubId: runner.hubId, projectId, sessionId })
            return true
          }
          if (runner.reclaimed) yield* startNextOrIdle(projectId, sessionId)
          return false
        })
      )
    })

    /**
     * Under the session's lock (the caller's too): its turn stopped, here or, signalled, on the hub
     * running it; returns that hub, if another. Nothing will start the session again here.
     */
    const release = (projectId: ProjectId, sessionId: SessionId) =>
      Effect.gen(function* () {
        const stopped = yield* stopTurn(sessionId)
        yield* setActive(sessionId, Option.none())
        if (!shared) return Option.none<string>()
        if (!stopped) {
          const runner = yield* runnerOf(projectId, sessionId)
          if (runner._tag === "Elsewhere") {
            yield* signal({ op: "stop", hubId: runner.hubId, projectId, sessionId })
            return Option.some(runner.hubId)
          }
        }
        yield* repo.deleteRun(sessionId)
        return Option.none<string>()
      })

    /** Under the session's lock: its running turn stopped and its queue dropped; nothing will start it again. */
    const quiesce = (projectId: ProjectId, sessionId: SessionId) =>
      withLock(sessionId)(
        Effect.gen(function* () {
          yield* sessions.clearQueue(sessionId)
          yield* takeSteered(sessionId)
          return yield* release(projectId, sessionId)
        })
      )

    /** Waits (boundedly) until the hub asked to stop a session's turn has released it. */
    const awaitReleased = (sessionId: SessionId) =>
      repo
        .getRun(sessionId)
        .pipe(Effect.filterOrFail(Option.isNone), Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("10 seconds"))), Effect.ignore)

    /**
     * Deletes a session and its sub-agents' sessions: their running turns are cancelled, their
     * queued prompts dropped and their pending permission requests expired first.
     */
    const deleteSession = Effect.fn("Orchestrator.deleteSession")(function* (sessionId: SessionId) {
      const projectId = yield* CurrentProject
      const ids = yield* sessions.tree(sessionId)
      yield* Effect.forEach(
        ids,
        (id) => Effect.flatMap(quiesce(projectId, id), (elsewhere) => (Option.isSome(elsewhere) ? awaitReleased(id) : Effect.void)),
        { discard: true }
      )
      yield* Effect.forEach(ids, (id) => permission.expireSession(projectId, id, "the session was deleted"), { discard: true })
      yield* sessions.remove(ids)
    })

    /** Cancels every running turn of a project about to be deleted (its queues go with its database). */
    const stopProject = Effect.fn("Orchestrator.stopProject")(function* (projectId: ProjectId) {
      yield* dbs.withProject(projectId)(
        Effect.gen(function* () {
          const all = yield* repo.listSessions(projectId, undefined)
          yield* Effect.forEach(all, (s) => withLock(s.id)(release(projectId, s.id)).pipe(Effect.ensuring(Effect.sync(() => dropSteered(s.id)))), {
            discard: true
          })
        })
      )
    })

    /**
     * Starts a turn on an idle session and waits for it to end; interrupting the wait cancels the
     * turn. Used by sub-agents, whose child sessions are new.
     */
    const runToCompletion = Effect.fn("Orchestrator.runToCompletion")(function* (caller: Principal, sessionId: SessionId, text: string) {
      const projectId = yield* CurrentProject
      const done = yield* Deferred.make<TurnOutcome>()
      const busy = yield* withLock(sessionId)(
        Effect.gen(function* () {
          if (Option.isSome(yield* activeTurn(sessionId))) return true
          if ((yield* runnerOf(projectId, sessionId))._tag === "Elsewhere") return true
          yield* sessions.addUserMessage(sessionId, text).pipe(Effect.orDie)
          yield* launch(projectId, sessionId, { caller, done })
          return false
        })
      )
      if (busy) return yield* new SessionBusy({ sessionId })
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

    /**
     * Under the session's lock, on a shared database: a session no live hub runs is settled (a gone
     * hub's turn interrupted) and its queue resumed here; one running here or on a live hub is left alone.
     */
    const settle = (projectId: ProjectId, sessionId: SessionId) =>
      withLock(sessionId)(
        Effect.gen(function* () {
          if (Option.isSome(yield* activeTurn(sessionId))) return
          const runner = yield* runnerOf(projectId, sessionId)
          if (runner._tag === "Elsewhere") return
          if (!runner.reclaimed) yield* reclaim(projectId, sessionId)
          yield* startNextOrIdle(projectId, sessionId)
        })
      )

    /** Stops a turn of this hub that another hub asked to stop (see `cancel` and `release`). */
    const onSignal = (s: SessionSignal) =>
      dbs.withProject(s.projectId)(
        withLock(s.sessionId)(
          Effect.gen(function* () {
            if (Option.isNone(yield* activeTurn(s.sessionId))) return
            if (s.op === "cancel") {
              yield* stopTurn(s.sessionId)
              yield* startNextOrIdle(s.projectId, s.sessionId)
            } else {
              yield* takeSteered(s.sessionId)
              yield* release(s.projectId, s.sessionId)
            }
          })
        )
      )

    yield* recover({
      projects,
      dbs,
      repo,
      bus,
      permission,
      resume: (projectId, sessionId) => withLock(sessionId)(startNextOrIdle(projectId, sessionId)),
      ...(shared ? { settle } : {})
    })

    if (shared) {
      yield* cluster.listen("kiris_sessions").pipe(
        Stream.filterMap(decodeSignal),
        Stream.filter((s) => s.hubId === me),
        Stream.runForEach((s) => Effect.fork(onSignal(s).pipe(Effect.catchAllCause(Effect.logWarning)))),
        Effect.forkScoped
      )
      // Heartbeat: the rows of the sessions running here stay theirs.
      const heartbeat = Effect.gen(function* () {
        const until = yield* runExpiry
        for (const projectId of yield* activeProjects) {
          yield* dbs.withProject(projectId)(repo.renewRuns(me, until)).pipe(Effect.catchAllCause(Effect.logWarning))
        }
      })
      yield* heartbeat.pipe(Effect.delay(HEARTBEAT_EVERY), Effect.forever, Effect.forkScoped)
      // Sweeper: sessions whose hub stopped renewing their rows are settled here.
      const sweep = Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const ids = (yield* projects.listAll).map((p) => p.id)
        for (const projectId of yield* projectsWithExpiredRuns(root, ids, now)) {
          yield* dbs.withProject(projectId)(
            Effect.flatMap(repo.expiredRuns(now), (runs) => Effect.forEach(runs, (run) => settle(projectId, run.sessionId), { discard: true }))
          )
        }
      }).pipe(Effect.catchAllCause(Effect.logWarning))
      yield* sweep.pipe(Effect.delay(SWEEP_EVERY), Effect.forever, Effect.forkScoped)
    }
    /** What the per-session bookkeeping holds (every count is 0 while all sessions are idle). */
    const tracked = Effect.zipWith(sizes, FiberMap.size(fibers), (s, fibers) => ({ ...s, fibers }))
    return { createSession, prompt, cancel, runToCompletion, deleteSession, stopProject, tracked } as const
  }),
  dependencies: [TurnRunner.Default, Session.Default, SessionRepo.Default, ProjectsRepo.Default, Models.Default, Permission.Default]
}) {}
