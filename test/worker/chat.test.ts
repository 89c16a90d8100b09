import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fakeOpenAI, lastUserText, systemText } from "../support/FakeOpenAI.js"
import { executorsLayer, run, taskInput, tempDir } from "./support.js"

describe("chat executor", () => {
  it.scopedLive("calls an openai-compatible model with the workdir's context in the system prompt", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      fake.script({ text: "the answer", usage: { prompt_tokens: 12, completion_tokens: 3 } })
      const dir = tempDir()
      fs.mkdirSync(path.join(dir, ".kiris"))
      fs.writeFileSync(path.join(dir, ".kiris", "context.md"), "CONTEXT: use metric units")
      fs.writeFileSync(path.join(dir, "AGENTS.md"), "AGENTS: be brief")
      const result = yield* run(
        taskInput("chat", {
          prompt: "how far is it?",
          system: "You are a test.",
          model: "openai-compatible:llama3",
          workdir: { _tag: "shared", path: dir }
        })
      ).pipe(Effect.provide(executorsLayer({}, { KIRIS_OPENAI_COMPATIBLE_BASE_URL: fake.baseURL })))
      assert.deepStrictEqual(result, { text: "the answer", usage: { inputTokens: 12, outputTokens: 3 }, model: "openai-compatible:llama3" })
      const body = fake.requests[0]!.body
      assert.strictEqual(body.model, "llama3")
      assert.strictEqual(lastUserText(body), "how far is it?")
      const system = systemText(body)
      assert.match(system, /CONTEXT: use metric units[\s\S]*AGENTS: be brief[\s\S]*You are a test\./)
    })
  )

  it.scopedLive("uses the openai provider with OPENAI_BASE_URL and KIRIS_MODEL as the default, plus dependency results", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const result = yield* run(taskInput("chat", { prompt: "summarize: {results}" }, { tsk_a: { text: "alpha" }, tsk_b: { stdout: "beta" } })).pipe(
        Effect.provide(executorsLayer({}, { OPENAI_API_KEY: "sk-test", OPENAI_BASE_URL: fake.baseURL, KIRIS_MODEL: "openai:gpt-test" }))
      )
      assert.strictEqual((result as { model: string }).model, "openai:gpt-test")
      const request = fake.requests[0]!
      assert.strictEqual(request.body.model, "gpt-test")
      assert.strictEqual(request.headers.authorization, "Bearer sk-test")
      const prompt = lastUserText(request.body)
      assert.include(prompt, "### tsk_a\nalpha")
      assert.include(prompt, "### tsk_b\nbeta")
      assert.notInclude(prompt, "{results}")
    })
  )

  it.scopedLive("a missing key or base URL fails permanently, naming the variable to set", () =>
    Effect.gen(function* () {
      const layer = executorsLayer()
      const openai = yield* Effect.flip(run(taskInput("chat", { prompt: "x", model: "openai:gpt-4o" })).pipe(Effect.provide(layer)))
      assert.include(openai.message, "OPENAI_API_KEY")
      assert.isFalse(openai.retryable)
      const compatible = yield* Effect.flip(run(taskInput("chat", { prompt: "x", model: "openai-compatible:m" })).pipe(Effect.provide(layer)))
      assert.include(compatible.message, "KIRIS_OPENAI_COMPATIBLE_BASE_URL")
      const anthropic = yield* Effect.flip(run(taskInput("chat", { prompt: "x", model: "anthropic:claude" })).pipe(Effect.provide(layer)))
      assert.include(anthropic.message, "ANTHROPIC_API_KEY")
      const unknown = yield* Effect.flip(run(taskInput("chat", { prompt: "x", model: "mystery:m" })).pipe(Effect.provide(layer)))
      assert.include(unknown.message, 'unknown provider "mystery"')
      const none = yield* Effect.flip(run(taskInput("chat", { prompt: "x" })).pipe(Effect.provide(layer)))
      assert.include(none.message, "KIRIS_MODEL")
      const bad = yield* Effect.flip(run(taskInput("chat", { text: "no prompt" })).pipe(Effect.provide(layer)))
      assert.include(bad.message, "invalid chat payload")
      assert.isFalse(bad.retryable)
    })
  )

  it.scopedLive("an HTTP error from the model is a task failure with the status", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      fake.script({ httpError: { status: 401, message: "bad key" } })
      const error = yield* Effect.flip(
        run(taskInput("chat", { prompt: "x", model: "openai-compatible:m" })).pipe(
          Effect.provide(executorsLayer({}, { KIRIS_OPENAI_COMPATIBLE_BASE_URL: fake.baseURL }))
        )
      )
      assert.include(error.message, "401")
      assert.isFalse(error.retryable)
    })
  )

  it.scopedLive("interrupting a chat run aborts the HTTP request", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      fake.script({ hang: true })
      const fiber = yield* Effect.fork(
        run(taskInput("chat", { prompt: "never ends", model: "openai-compatible:m" })).pipe(
          Effect.provide(executorsLayer({}, { KIRIS_OPENAI_COMPATIBLE_BASE_URL: fake.baseURL }))
        )
      )
      yield* Effect.promise(() => fake.waitForRequests(1))
      const closed = fake.waitForClosed(1)
      yield* Fiber.interrupt(fiber)
      yield* Effect.promise(() => closed)
      assert.strictEqual(fake.closedConnections, 1)
    })
  )
})
