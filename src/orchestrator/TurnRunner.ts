import type { SqlClient } from "@effect/sql"
import { isStepCount, streamText, type TextStreamPart, type ToolSet } from "ai"
import { Cause, Chunk, Data, Duration, Effect, Exit, Option, Stream } from "effect"
import { newId } from "../auth/Crypto.js"
import { ServerConfig } from "../config/ServerConfig.js"
import type { Principal } from "../domain/Auth.js"
import type { MessageId } from "../domain/Ids.js"
import { Message, type MessageStatus, type SessionInfo, Usage } from "../domain/Session.js"
import { EventBus } from "../events/EventBus.js"
import { Models } from "../llm/Models.js"
import { errorText } from "../llm/StreamParts.js"
import { ProjectsRepo } from "../project/ProjectsRepo.js"
import { Session } from "../session/Session.js"
import { SessionRepo } from "../session/SessionRepo.js"
import { CurrentProject } from "../storage/ProjectDb.js"
import { SubAgents } from "../tools/SubAgents.js"
import { type ToolCallerContext, ToolRegistry } from "../tools/ToolRegistry.js"
import { findAgent, instructionsFor, toolsForAgent } from "./Agents.js"
import { toModelMessages } from "./History.js"
import { makeTurnRecorder } from "./TurnRecorder.js"

/** How a turn ended; `answer` is the text of its last step. */
export interface TurnOutcome {
  /** The assistant message; null when the turn was stopped before it wrote one. */
  readonly messageId: MessageId | null
  readonly status: MessageStatus
  readonly answer: string
  readonly error: string | null
}

export interface TurnInput {
  readonly session: SessionInfo
  readonly caller: Principal
  readonly subAgents: SubAgents["Type"]
  /** The status an interrupted turn gets: `cancelled` when asked to stop, `interrupted` on shutdown. */
  readonly interruptedAs: Effect.Effect<"cancelled" | "interrupted">
  readonly onDone: (outcome: TurnOutcome) => Effect.Effect<void>
}

class TurnFailed extends Data.TaggedError("TurnFailed")<{ readonly message: string }> {}

/** Parts are written and published at most this often, or once this many have arrived. */
const FLUSH_EVERY = Duration.millis(50)
const FLUSH_PARTS = 64

/**
 * Runs one assistant turn of a session: assembles the history, streams the model with the tool
 * loop, and records every stream part (batched: one transaction and one publish per flush). It
 * never fails: errors, cancellation and interruption end the message with the matching status.
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
      apply: (chunk: Chunk.Chunk<TextStreamPart<ToolSet>>) => Effect.Effect<void, never, SqlClient.SqlClient>,
      recorded: (toolCallId: string) => Effect.Effect<void>
    ) =>
      Effect.gen(function* () {
        const { session } = input
        const project = yield* projects.get(session.projectId)
        if (Option.isNone(project)) return yield* new TurnFailed({ message: `project ${session.projectId} no longer exists` })
        const agent = findAgent(session.agent)
        if (agent === undefined) return yield* new TurnFailed({ message: `unknown agent: ${session.agent}` })
        const model = yield* models.resolve(session.model).pipe(Effect.mapError((e) => new TurnFailed({ message: e.message })))
        const history = yield* repo.history(session.id)
        const messages = toModelMessages(history.filter((m) => m.message.id !== messageId))
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
          maxRetries: models.maxRetries,
          abortSignal: controller.signal,
          onError: () => {}
        })
        yield* Stream.fromAsyncIterable(result.fullStream, (e) => new TurnFailed({ message: errorText(e) })).pipe(
          Stream.groupedWithin(FLUSH_PARTS, FLUSH_EVERY),
          Stream.runForEach(apply)
        )
      }).pipe(Effect.scoped)

    const run = Effect.fn("TurnRunner.run")(function* (input: TurnInput) {
      const projectId = yield* CurrentProject
      const message = Message.make({
        id: newId("msg") as MessageId,
        sessionId: input.session.id,
        role: "assistant",
        status: "running",
        model: input.session.model,
        finishReason: null,
        usage: Usage.zero,
        error: null,
        createdAt: Date.now(),
        completedAt: null
      })
      const recorder = makeTurnRecorder({ repo, bus, projectId, message })
      yield* recorder.flush

      const finalize = (exit: Exit.Exit<void, TurnFailed>) =>
        Effect.gen(function* () {
          let status: MessageStatus = "completed"
          let error: string | undefined = recorder.streamError()
          if (Exit.isSuccess(exit)) {
            if (error !== undefined) status = "error"
          } else if (Cause.isInterruptedOnly(exit.cause)) {
            status = yield* input.interruptedAs
          } else {
            status = "error"
            const failure = Cause.failureOption(exit.cause)
            error = Option.isSome(failure) ? failure.value.message : `internal error: ${Cause.pretty(exit.cause)}`
            if (Option.isNone(failure)) yield* Effect.logError("turn crashed", exit.cause)
          }
          const done = yield* recorder.finish(status, error)
          yield* sessions.addUsage(input.session.id, done.usage)
          yield* input.onDone({ messageId: message.id, status, answer: recorder.answer(), error: error ?? null })
        })

      yield* stream(
        input,
        message.id,
        (chunk) =>
          Effect.zipRight(
            Effect.sync(() => Chunk.forEach(chunk, recorder.apply)),
            recorder.flush
          ),
        recorder.recorded
      ).pipe(Effect.onExit(finalize), Effect.ignore)
      return message.id
    })

    return { run } as const
  }),
  dependencies: [SessionRepo.Default, Session.Default, Models.Default, ToolRegistry.Default, ProjectsRepo.Default]
}) {}
