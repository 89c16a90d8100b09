import { assert, describe, it } from "@effect/vitest"
import { createOpenAICompatible } from "@ai-sdk/openai-compatible"
import { APICallError, generateText, streamText } from "ai"
import { Effect } from "effect"
import { timedFetch } from "../../src/llm/TimedFetch.js"
import { type FakeOpenAI, fakeOpenAI } from "../support/FakeOpenAI.js"

const timeouts = { firstByteMs: 150, idleMs: 150 }

const modelFor = (baseURL: string) =>
  createOpenAICompatible({ name: "fake", baseURL, includeUsage: true, fetch: timedFetch("fake:m", timeouts) }).chatModel("m")

/** Runs a streamed call to the end and returns its text, or the message of the error it reported. */
const streamed = (fake: FakeOpenAI | string, options: { readonly maxRetries?: number; readonly abortSignal?: AbortSignal } = {}) =>
  Effect.promise(async () => {
    let error: unknown
    const result = streamText({
      model: modelFor(typeof fake === "string" ? fake : fake.baseURL),
      prompt: "hi",
      maxRetries: options.maxRetries ?? 0,
      ...(options.abortSignal ? { abortSignal: options.abortSignal } : {}),
      onError: ({ error: e }) => {
        error = e
      }
    })
    let text = ""
    try {
      for await (const part of result.fullStream) {
        if (part.type === "text-delta") text += part.text
        if (part.type === "error") error = part.error
      }
    } catch (e) {
      error = e
    }
    return { text, error }
  })

describe("timedFetch", () => {
  it.scopedLive("passes a streamed answer through unchanged", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      fake.script({ slow: { text: "one two three", delayMs: 50 } })
      const { text, error } = yield* streamed(fake)
      assert.isUndefined(error)
      assert.strictEqual(text, "one two three")
    })
  )

  it.scopedLive("fails a streamed call whose server sends headers and then nothing, closing the request", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      fake.script({ stall: "body" })
      const { error } = yield* streamed(fake)
      assert.isTrue(APICallError.isInstance(error))
      assert.include((error as Error).message, "fake:m did not start answering within 150ms (modelFirstByteTimeoutSeconds)")
      yield* Effect.promise(() => fake.waitForClosed(1)).pipe(Effect.timeout("10 seconds"))
    })
  )

  it.scopedLive("leaves requests that are not streamed alone: their server is silent until the answer is whole", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      // The whole answer arrives after 3 × 200 ms, longer than both limits.
      fake.script({ slow: { text: "a b c", delayMs: 200 } })
      const result = yield* Effect.promise(() => generateText({ model: modelFor(fake.baseURL), prompt: "hi", maxRetries: 0 }))
      assert.strictEqual(result.text, "a b c")
    })
  )

  it.scopedLive("an abort from the caller stays an abort", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      fake.script({ stall: "headers" })
      const controller = new AbortController()
      const pending = streamed(fake, { abortSignal: controller.signal }).pipe(Effect.fork)
      const fiber = yield* pending
      yield* Effect.promise(() => fake.waitForRequests(1))
      controller.abort()
      const { error } = yield* fiber.await.pipe(Effect.flatten)
      assert.notInclude(String((error as Error | undefined)?.message ?? error), "modelFirstByteTimeoutSeconds")
      yield* Effect.promise(() => fake.waitForClosed(1)).pipe(Effect.timeout("10 seconds"))
    })
  )
})
