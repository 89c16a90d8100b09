import { isStepCount, streamText } from "ai"
import { Chunk, Duration, Effect, Option, Stream } from "effect"
import { AgentPayload, type AgentPart, type AgentResult } from "../domain/AgentTask.js"
import { Models } from "../llm/Models.js"
import { errorText, toAgentPart } from "../llm/StreamParts.js"
import { systemPrompt } from "./ContextFiles.js"
import { TaskFailure } from "./TaskFailure.js"
import { decodePayload, type TaskInput } from "./TaskInput.js"
import { workerTools } from "./WorkerTools.js"
import { withWorkdir, worktreeChanges } from "./Workdirs.js"

/**
 * `agent`: one agent turn of a hub session's sub-agent, run here, always in a workdir (the task's,
 * else the worker's default, else an isolated one) with the worker's tools confined to it (see
 * WorkerTools). The model's stream parts, tool calls and results included, go back to the hub with
 * `task.progress` as they arrive (batched), so clients watch the child session live; the answer
 * completes the task. Interrupting the run aborts the HTTP request and the running tool calls.
 */

/** Sends a batch of parts to the hub (`task.progress` with this lease's fencing token). */
export type ReportProgress = (parts: ReadonlyArray<AgentPart>) => Effect.Effect<void>

const PROGRESS_EVERY = Duration.millis(50)
const PROGRESS_PARTS = 64
const DEFAULT_MAX_STEPS = 25

export const runAgent = Effect.fn("AgentExecutor.run")(function* (input: TaskInput, progress: ReportProgress) {
  const payload = yield* decodePayload(AgentPayload, input)
  const models = yield* Models
  const resolved = yield* models.resolve(payload.model).pipe(Effect.mapError((e) => TaskFailure.permanent(e.message)))

  const turn = (cwd: string) =>
    Effect.gen(function* () {
      const contextPrompt = yield* systemPrompt(cwd, undefined)
      const instructions = [payload.instructions, contextPrompt].filter((s) => s !== undefined && s !== "").join("\n\n")
      const controller = yield* Effect.acquireRelease(
        Effect.sync(() => new AbortController()),
        (c) => Effect.sync(() => c.abort())
      )
      const tools = yield* workerTools({
        projectId: input.projectId,
        sessionId: payload.sessionId,
        messageId: payload.messageId,
        workdir: cwd,
        abortSignal: controller.signal,
        allowed: payload.tools
      })
      const result = streamText({
        model: resolved.model,
        prompt: payload.prompt,
        ...(Object.keys(tools).length === 0 ? {} : { tools }),
        stopWhen: isStepCount(payload.maxSteps ?? DEFAULT_MAX_STEPS),
        maxRetries: models.maxRetries,
        abortSignal: controller.signal,
        onError: () => {},
        ...(instructions === "" ? {} : { instructions })
      })
      let sent = 0
      let streamError: string | undefined
      let step = 0
      const texts: Array<{ step: number; text: string }> = []
      yield* Stream.fromAsyncIterable(result.fullStream, (e) => TaskFailure.retryable(`LLM call failed: ${errorText(e)}`)).pipe(
        Stream.tap((p) =>
          Effect.sync(() => {
            if (p.type === "start-step") step += 1
            if (p.type === "text-delta") {
              const last = texts[texts.length - 1]
              if (last?.step === step) last.text += p.text
              else texts.push({ step, text: p.text })
            }
            if (p.type === "error") streamError = errorText(p.error)
          })
        ),
        Stream.filterMap((p) => Option.fromNullable(toAgentPart(p))),
        Stream.groupedWithin(PROGRESS_PARTS, PROGRESS_EVERY),
        Stream.runForEach((chunk) => {
          sent += chunk.length
          return progress(Chunk.toReadonlyArray(chunk))
        })
      )
      if (streamError !== undefined) return yield* TaskFailure.permanent(`the model failed: ${streamError}`)
      const usage = yield* Effect.promise(() => result.totalUsage)
      const lastStep = texts[texts.length - 1]?.step
      return {
        text: texts
          .filter((t) => t.step === lastStep)
          .map((t) => t.text)
          .join(""),
        parts: sent,
        model: resolved.id,
        usage: { inputTokens: usage.inputTokens ?? 0, outputTokens: usage.outputTokens ?? 0 }
      } satisfies AgentResult
    }).pipe(Effect.scoped)

  const run = yield* withWorkdir(input.taskId, payload.workdir, turn)
  return { ...run.value, ...worktreeChanges(run) }
})
