import { reachableWorkspace } from "../project/WorkspacePolicy.js"
import type { SqlClient } from "@effect/sql"
import { isStepCount, type ModelMessage, streamText, type TextStreamPart, type ToolSet } from "ai"
import { Cause, Clock, Data, Duration, Effect, Exit, Option, Schedule } from "effect"
import { newId } from "../auth/Crypto.js"
import { ServerConfig } from "../config/ServerConfig.js"
import type { Principal } from "../domain/Auth.js"
import type { MessageId } from "../domain/Ids.js"
import { Message, type MessageStatus, type SessionInfo, Usage } from "../domain/Session.js"
import { EventBus } from "../events/EventBus.js"
import { Models } from "../llm/Models.js"
import { errorText } from "../llm/StreamParts.js"
import { ProjectsRepo } from "../project/ProjectsRepo.js"
import { makeStepSpans } from "../runtime/Tracing.js"
import { Session } from "../session/Session.js"
import { SessionRepo } from "../session/SessionRepo.js"
import { CurrentProject } from "../storage/ProjectDb.js"
import { SubAgents } from "../tools/SubAgents.js"
import { type ToolCallerContext, ToolRegistry } from "../tools/ToolRegistry.js"
import { recordTurn } from "../transport/metrics/AgentMetrics.js"
import { findAgent, instructionsFor, toolsForAgent } from "./Agents.js"
import { toModelMessages } from "./History.js"
import { makeTurnRecorder, stepLimitError } from "./TurnRecorder.js"

/** How a turn ended; `answer` is the text of its last step. */
export interface TurnOutcome {
  /** The assistant message; null when the turn was stopped before it wrote one. */
  readonly messageId: MessageId | null
  readonly status: MessageStatus
  readonly answer: string
  readonly error: string | null
}

/** A prompt sent to a running turn (`mode: "steer"`), already stored as user message `messageId`. */
export interface SteeredPrompt {
  readonly messageId: MessageId
  readonly text: string
}

export interface TurnInput {
  readonly session: SessionInfo
  readonly caller: Principal
  readonly subAgents: SubAgents["Type"]
  /** The status an interrupted turn gets: `cancelled` when asked to stop, `interrupted` on shutdown. */
  readonly interruptedAs: Effect.Effect<"cancelled" | "interrupted">
  readonly onDone: (outcome: TurnOutcome) => Effect.Effect<void>
  /**
   * Takes the prompts steered into the session since the last take. The turn takes them before
   * every model call and adds those its history does not hold yet; what it never takes (it ended
   * first) is for the caller to answer.
   */
  readonly takeSteered?: Effect.Effect<ReadonlyArray<SteeredPrompt>>
}

class TurnFailed extends Data.TaggedError("TurnFailed")<{ readonly message: string }> {}

/**
 * Stream parts that only open something the model goes on with at once: they are recorded with
 * the part after them (one transaction, e.g. a text part's start with its first delta), never alone.
 */
const OPENING = new Set<string>(["start", "start-step", "text-start", "reasoning-start", "tool-input-start"])

/** While a part streams, its text so far is written this often (off the way of its deltas). */
const CHECKPOINT_EVERY = Duration.seconds(1)

/**
 * Runs one assistant turn of a session: assembles the history, streams the model with the tool
 * loop, and records every stream part as it arrives: a model delta goes to subscribers at once
 * (nothing written on its way), any other part is written and published before the next part is
 * taken (one that only opens a part goes with the part after it). It never fails: errors,
 * cancellation and interruption end the message with the matching status.
 */
export class TurnRunner extends Effect.Service<TurnRunner>()("kiris/TurnRunner", {
  effect: Effect.gen(function* () {
    const repo = yield* SessionRepo
    const sessions = yield* Session
    const bus = yield* EventBus
    const models = yield* Models
    const registry = yield* ToolRegistry
    const projects = yield* ProjectsRepo
    const config = yield* ServerConfig

    const stream = (
      input: TurnInput,
      messageId: MessageId,
      apply: (part: TextStreamPart<ToolSet>) => Effect.Effect<void, never, SqlClient.SqlClient>,
      recorded: (toolCallId: string) => Effect.Effect<void>,
      checkpoint: Effect.Effect<void, never, SqlClient.SqlClient>
    ) =>
      Effect.gen(function* () {
        const { session } = input
        const project = yield* projects.get(session.projectId)
        if (Option.isNone(project)) return yield* new TurnFailed({ message: `project ${session.projectId} no longer exists` })
        yield* reachableWorkspace(session.projectId, project.value.workspace).pipe(Effect.mapError((e) => new TurnFailed({ message: e.reason })))
        const agent = findAgent(session.agent)
        if (agent === undefined) return yield* new TurnFailed({ message: `unknown agent: ${session.agent}` })
        const timeouts = { firstByteMs: config.modelFirstByteTimeoutSeconds * 1000, idleMs: config.modelIdleTimeoutSeconds * 1000 }
        const model = yield* models.resolve(session.model, timeouts).pipe(Effect.mapError((e) => new TurnFailed({ message: e.message })))
        const history = yield* repo.history(session.id)
        // Prompts steered in before the history was read are part of it already; later ones are added.
        const seen = new Set<string>(history.map((m) => m.message.id))
        const takeSteered = input.takeSteered ?? Effect.succeed([])
        const steered = (): Array<ModelMessage> =>
          Effect.runSync(takeSteered).flatMap((p) => {
            if (seen.has(p.messageId)) return []
            seen.add(p.messageId)
            return [{ role: "user" as const, content: p.text }]
          })
        const messages = [...toModelMessages(history.filter((m) => m.message.id !== messageId)), ...steered()]
        const controller = yield* Effect.acquireRelease(
          Effect.sync(() => new AbortController()),
          (c) => Effect.sync(() => c.abort())
        )
        const ctx: ToolCallerContext = {
          projectId: session.projectId,
          sessionId: session.id,
          messageId,
          workspace: project.value.workspace,
          caller: input.caller,
          abortSignal: controller.signal,
          recorded
        }
        const tools = yield* registry.toolsFor(ctx).pipe(Effect.provideService(SubAgents, input.subAgents))
        const result = streamText({
          model: model.model,
          instructions: instructionsFor(agent, project.value.workspace),
          messages,
          tools: toolsForAgent(agent, tools),
          stopWhen: isStepCount(config.agentMaxSteps),
          // Steered prompts join at the step boundary; the SDK carries the messages forward.
          prepareStep: ({ messages: current }) => {
            const added = steered()
            return added.length === 0 ? {} : { messages: [...current, ...added] }
          },
          maxRetries: models.maxRetries,
          abortSignal: controller.signal,
          onError: () => {}
        })
        // one `model.call` span per step of the tool loop (a child of the turn's span)
        const steps = yield* makeStepSpans({ "gen_ai.request.model": session.model, "kiris.session_id": session.id })
        yield* checkpoint.pipe(Effect.repeat(Schedule.spaced(CHECKPOINT_EVERY)), Effect.delay(CHECKPOINT_EVERY), Effect.forkScoped)
        // The parts straight from the stream's reader, one at a time (no stream machinery per delta).
        const reader = yield* Effect.acquireRelease(
          Effect.sync(() => result.fullStream.getReader()),
          (r) => Effect.sync(() => void r.cancel().catch(() => undefined))
        )
        const read = Effect.tryPromise({ try: () => reader.read(), catch: (e) => new TurnFailed({ message: errorText(e) }) })
        const pump: Effect.Effect<void, TurnFailed, SqlClient.SqlClient> = Effect.flatMap(read, (next) =>
          next.done ? Effect.void : Effect.zipRight(Effect.zipRight(steps.onPart(next.value), apply(next.value)), pump)
        )
        yield* pump.pipe(Effect.ensuring(steps.close))
      }).pipe(Effect.scoped)

    const run = Effect.fn("TurnRunner.run")(function* (input: TurnInput) {
      const projectId = yield* CurrentProject
      const now = yield* Clock.currentTimeMillis
      const message = Message.make({
        id: newId("msg") as MessageId,
        sessionId: input.session.id,
        role: "assistant",
        status: "running",
        model: input.session.model,
        finishReason: null,
        usage: Usage.zero,
        error: null,
        createdAt: now,
        completedAt: null
      })
      const recorder = makeTurnRecorder({ repo, bus, projectId, message })
      yield* recorder.flush

      const finalize = (exit: Exit.Exit<void, TurnFailed>) =>
        Effect.gen(function* () {
          let status: MessageStatus = "completed"
          let error: string | undefined = recorder.streamError()
          let finishReason: string | undefined
          if (Exit.isSuccess(exit)) {
            if (error !== undefined) {
              status = "error"
            } else {
              error = stepLimitError(recorder, config.agentMaxSteps)
              if (error !== undefined) {
                status = "error"
                finishReason = "max-steps"
              }
            }
          } else if (Cause.isInterruptedOnly(exit.cause)) {
            status = yield* input.interruptedAs
          } else {
            status = "error"
            const failure = Cause.failureOption(exit.cause)
            error = Option.isSome(failure) ? failure.value.message : `internal error: ${Cause.pretty(exit.cause)}`
            if (Option.isNone(failure)) yield* Effect.logError("turn crashed", exit.cause)
          }
          const done = yield* recorder.finish(status, error, finishReason)
          recordTurn(finishReason === "max-steps" ? "max-steps" : status, input.session.model, done.usage)
          yield* sessions.addUsage(input.session.id, done.usage)
          yield* input.onDone({ messageId: message.id, status, answer: recorder.answer(), error: error ?? null })
        })

      yield* stream(
        input,
        message.id,
        (part) =>
          Effect.suspend(() => {
            recorder.apply(part)
            return OPENING.has(part.type) ? Effect.void : recorder.flush
          }),
        recorder.recorded,
        recorder.checkpoint
      ).pipe(Effect.onExit(finalize), Effect.ignore)
      return message.id
    })

    return { run } as const
  }),
  dependencies: [SessionRepo.Default, Session.Default, Models.Default, ToolRegistry.Default, ProjectsRepo.Default]
}) {}
