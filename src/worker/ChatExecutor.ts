import { APICallError, generateText } from "ai"
import { Effect } from "effect"
import { ChatPayload } from "../domain/Task.js"
import { Models } from "../llm/Models.js"
import { systemPrompt } from "./ContextFiles.js"
import { TaskFailure } from "./TaskFailure.js"
import { decodePayload, promptWithInputs, type TaskInput } from "./TaskInput.js"
import { WorkerConfig } from "./WorkerConfig.js"
import { withWorkdir, worktreeChanges } from "./Workdirs.js"

/** `chat`: one LLM call through the AI SDK. Interrupting it aborts the HTTP request. */

export interface ChatResult {
  readonly text: string
  readonly usage: { readonly inputTokens: number; readonly outputTokens: number }
  readonly model: string
  /** For worktree runs: what the run left behind (`diff`, and `commits`/`branch` if it made any). */
  readonly diff?: string
  readonly commits?: string
  readonly branch?: string
}

const toFailure = (error: unknown): TaskFailure => {
  if (APICallError.isInstance(error)) {
    const status = error.statusCode === undefined ? "" : ` (HTTP ${error.statusCode})`
    return new TaskFailure({ message: `LLM call failed${status}: ${error.message}`, retryable: error.isRetryable })
  }
  return TaskFailure.retryable(`LLM call failed: ${error instanceof Error ? error.message : String(error)}`)
}

export const runChat = Effect.fn("ChatExecutor.run")(function* (input: TaskInput) {
  const payload = yield* decodePayload(ChatPayload, input)
  const models = yield* Models
  const config = yield* WorkerConfig
  const resolved = yield* models.resolve(payload.model).pipe(Effect.mapError((e) => TaskFailure.permanent(e.message)))
  const call = (cwd: string | undefined) =>
    Effect.gen(function* () {
      const system = yield* systemPrompt(cwd, payload.system)
      const prompt = promptWithInputs(payload.prompt, input.inputs, input.dependencies)
      const result = yield* Effect.acquireUseRelease(
        Effect.sync(() => new AbortController()),
        (controller) =>
          Effect.tryPromise({
            try: () =>
              generateText({
                model: resolved.model,
                prompt,
                abortSignal: controller.signal,
                maxRetries: models.maxRetries,
                ...(system === undefined ? {} : { system })
              }),
            catch: toFailure
          }),
        (controller) => Effect.sync(() => controller.abort())
      )
      return {
        text: result.text,
        usage: { inputTokens: result.totalUsage.inputTokens ?? 0, outputTokens: result.totalUsage.outputTokens ?? 0 },
        model: resolved.id
      }
    })
  if (payload.workdir === undefined && config.defaultWorkdir === undefined) return yield* call(undefined)
  const run = yield* withWorkdir(input.taskId, payload.workdir, call)
  return { ...run.value, ...worktreeChanges(run) } satisfies ChatResult
})
