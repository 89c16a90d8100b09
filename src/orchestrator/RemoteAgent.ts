import type { SqlClient } from "@effect/sql"
import type { TextStreamPart, ToolSet } from "ai"
import { Clock, Effect, Exit, Option, Schema, Stream, SubscriptionRef } from "effect"
import { newId } from "../auth/Crypto.js"
import { AgentPart, AgentResult, RemoteToolNames } from "../domain/AgentTask.js"
import type { MessageId, TaskId } from "../domain/Ids.js"
import { Message, type MessageStatus, type SessionInfo, Usage } from "../domain/Session.js"
import { EnqueueTask } from "../domain/Task.js"
import type { EventBus } from "../events/EventBus.js"
import type { TaskQueueShape } from "../queue/TaskQueue.js"
import type { Session } from "../session/Session.js"
import type { SessionRepo } from "../session/SessionRepo.js"
import { CurrentProject } from "../storage/ProjectDb.js"
import type { ToolContext } from "../tools/ToolRegistry.js"
import { type AgentSpec, findAgent, instructionsFor } from "./Agents.js"
import { makeTurnRecorder, stepLimitError } from "./TurnRecorder.js"

export interface RemoteDeps {
  readonly queue: TaskQueueShape
  readonly bus: EventBus
  readonly repo: SessionRepo
  readonly sessions: Session
  readonly maxSteps: number
}

/** The agent's own tool filter (as `toolsForAgent` applies it locally), by name. */
const mayUse = (agent: AgentSpec, name: string) => (agent.tools === "all" || agent.tools.includes(name)) && !(agent.exclude ?? []).includes(name)

const decodeParts = Schema.decodeUnknownOption(Schema.Array(AgentPart))
const decodeResult = Schema.decodeUnknownOption(AgentResult)

/**
 * A sub-agent turn run by a swarm worker: the child's user message and a running assistant message
 * are stored here, an `agent` task is enqueued with the tools the agent may use there (of
 * RemoteToolNames; `bash` only when the caller holds the execute grant; the worker's policy decides
 * how they run), and every part the worker streams back (`task.progress`, published as
 * `TaskProgress`), text and tool calls with their results alike, is recorded into the child session
 * exactly like a local turn's. The task's result is the answer; cancelling the wait cancels the task.
 */
export const makeRemoteRunner =
  (deps: RemoteDeps) =>
  (parent: ToolContext, child: SessionInfo, prompt: string): Effect.Effect<string, string, SqlClient.SqlClient | CurrentProject> =>
    Effect.gen(function* () {
      const projectId = yield* CurrentProject
      const taskId = newId("tsk") as TaskId
      yield* deps.sessions.addUserMessage(child.id, prompt).pipe(Effect.orDie)
      yield* deps.sessions.setStatus(child.id, "running")
      const message = Message.make({
        id: newId("msg") as MessageId,
        sessionId: child.id,
        role: "assistant",
        status: "running",
        model: child.model,
        finishReason: null,
        usage: Usage.zero,
        error: null,
        createdAt: yield* Clock.currentTimeMillis,
        completedAt: null
      })
      const recorder = makeTurnRecorder({ repo: deps.repo, bus: deps.bus, projectId, message })
      yield* recorder.flush

      const received = yield* SubscriptionRef.make(0)
      const progress = yield* deps.bus.subscribe((e) => e.projectId === projectId && e.event._tag === "TaskProgress" && e.event.taskId === taskId)
      yield* progress.pipe(
        Stream.runForEach((item) => {
          if (item._tag !== "Event" || item.event.event._tag !== "TaskProgress") return Effect.void
          const parts = Option.getOrElse(decodeParts(item.event.event.parts), () => [])
          // An AgentPart carries exactly the fields of the AI SDK stream part that the recorder reads.
          for (const p of parts) recorder.apply(p as unknown as TextStreamPart<ToolSet>)
          return Effect.zipRight(
            recorder.flush,
            SubscriptionRef.update(received, (n) => n + parts.length)
          )
        }),
        Effect.forkScoped
      )

      const agent = findAgent(child.agent)
      // Commands on a worker need the caller's execute grant, as a shell task would.
      const runsCommands = parent.canExecute === undefined ? false : yield* parent.canExecute
      yield* deps.queue
        .enqueue({
          ...EnqueueTask.make({
            projectId,
            kind: "agent",
            maxAttempts: 1,
            payload: {
              sessionId: child.id,
              prompt,
              model: child.model,
              maxSteps: deps.maxSteps,
              messageId: message.id,
              tools: RemoteToolNames.filter((name) => (agent === undefined || mayUse(agent, name)) && (name !== "bash" || runsCommands)),
              ...(agent === undefined ? {} : { instructions: instructionsFor(agent, "the task's working directory") })
            }
          }),
          id: taskId
        })
        .pipe(Effect.mapError((e) => `cannot enqueue the sub-agent task (session ${child.id}): ${e.message}`))

      const end = (status: MessageStatus, error?: string, finishReason?: string) =>
        Effect.gen(function* () {
          const done = yield* recorder.finish(status, error, finishReason)
          yield* deps.sessions.addUsage(child.id, done.usage).pipe(Effect.ignore)
          yield* deps.sessions.setStatus(child.id, "idle")
        })

      const [task] = yield* deps.queue.wait([taskId]).pipe(
        Effect.orDie,
        Effect.onExit((exit) =>
          Exit.isInterrupted(exit) ? Effect.zipRight(deps.queue.cancel(taskId).pipe(Effect.ignore), end("cancelled")) : Effect.void
        )
      )
      const result = task?.status === "done" ? decodeResult(task.result) : Option.none()
      if (Option.isNone(result)) {
        const why = `remote sub-agent (task ${taskId}, session ${child.id}) ${task?.status ?? "vanished"}: ${task?.error ?? "no result"}`
        yield* end("error", why)
        return yield* Effect.fail(why)
      }
      // The worker sends every part before completing; wait until all of them were recorded.
      yield* received.changes.pipe(
        Stream.filter((n) => n >= result.value.parts),
        Stream.take(1),
        Stream.runDrain,
        Effect.timeout("10 seconds"),
        Effect.ignore
      )
      const cutShort = stepLimitError(recorder, deps.maxSteps)
      if (cutShort !== undefined) {
        yield* end("error", cutShort, "max-steps")
        return yield* Effect.fail(`remote sub-agent (session ${child.id}) ${cutShort}`)
      }
      yield* end("completed")
      return result.value.text
    }).pipe(Effect.scoped, Effect.withSpan("SubAgents.runRemote", { attributes: { parent: parent.sessionId, child: child.id } }))
