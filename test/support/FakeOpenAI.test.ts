import { describe, expect, it } from "@effect/vitest"
import { createOpenAICompatible } from "@ai-sdk/openai-compatible"
import { generateText, stepCountIs, streamText, tool } from "ai"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, beforeEach } from "vitest"
import { z } from "zod"
import { echoLastUser, fakeOpenAI, type FakeOpenAI, lastUserText, startFakeOpenAI, systemText, toolResults } from "./FakeOpenAI.js"

const modelFor = (fake: FakeOpenAI) => createOpenAICompatible({ name: "fake", baseURL: fake.baseURL, apiKey: "x", includeUsage: true }).chatModel("m")

const collect = async <A>(iterable: AsyncIterable<A>): Promise<Array<A>> => {
  const out: Array<A> = []
  for await (const a of iterable) out.push(a)
  return out
}

describe("FakeOpenAI with the real AI SDK", () => {
  let fake: FakeOpenAI

  beforeAll(async () => {
    fake = await startFakeOpenAI()
  })
  afterAll(async () => {
    await fake.close()
  })
  beforeEach(() => {
    fake.reset()
  })

  it("streams text in deltas and reports usage", async () => {
    fake.script({ text: "hello from the fake", chunks: 3, usage: { prompt_tokens: 11, completion_tokens: 7 } })
    const result = streamText({ model: modelFor(fake), system: "be terse", prompt: "say hi" })
    const parts = await collect(result.fullStream)
    const deltas = parts.flatMap((p) => (p.type === "text-delta" ? [p.text] : []))
    expect(deltas.length).toBe(3)
    expect(deltas.join("")).toBe("hello from the fake")
    expect(await result.text).toBe("hello from the fake")
    expect(await result.finishReason).toBe("stop")
    const usage = await result.totalUsage
    expect(usage.inputTokens).toBe(11)
    expect(usage.outputTokens).toBe(7)
    expect(usage.totalTokens).toBe(18)

    expect(fake.requests.length).toBe(1)
    const req = fake.requests[0]!
    expect(req.body.stream).toBe(true)
    expect(req.body.model).toBe("m")
    expect(req.headers.authorization).toBe("Bearer x")
    expect(lastUserText(req.body)).toBe("say hi")
    expect(systemText(req.body)).toBe("be terse")
  })

  it("uses the default reply, setDefault and echoLastUser", async () => {
    const first = await streamText({ model: modelFor(fake), prompt: "a" }).text
    expect(first).toBe("ok")
    fake.setDefault(echoLastUser)
    const second = await streamText({ model: modelFor(fake), prompt: "ping" }).text
    expect(second).toBe("echo: ping")
  })

  it("routes concurrent requests with scriptFor and function replies", async () => {
    fake.scriptFor((b) => lastUserText(b) === "worker 2", { text: "special" })
    fake.scriptFor(
      (b) => lastUserText(b).startsWith("worker"),
      (b) => ({ text: `done ${lastUserText(b)}` }),
      {
        times: Infinity
      }
    )
    const texts = await Promise.all([1, 2, 3, 4].map((i) => streamText({ model: modelFor(fake), prompt: `worker ${i}` }).text))
    expect(texts).toEqual(["done worker 1", "special", "done worker 3", "done worker 4"])
  })

  it("streams reasoning as reasoning parts before the text", async () => {
    fake.script({ reasoning: "let me think about it", text: "42" })
    const result = streamText({ model: modelFor(fake), prompt: "answer?" })
    const parts = await collect(result.fullStream)
    const types = parts.map((p) => p.type)
    expect(types).toContain("reasoning-start")
    expect(types).toContain("reasoning-end")
    expect(types.indexOf("reasoning-delta")).toBeLessThan(types.indexOf("text-delta"))
    const reasoning = parts.flatMap((p) => (p.type === "reasoning-delta" ? [p.text] : [])).join("")
    expect(reasoning).toBe("let me think about it")
    expect(await result.reasoningText).toBe("let me think about it")
    expect(await result.text).toBe("42")
  })

  it("runs a two-step tool loop", async () => {
    fake.script({ toolCalls: [{ id: "call_1", name: "weather", args: { city: "Paris" } }] }, (body) => ({
      text: `forecast: ${toolResults(body)[0]?.content ?? "?"}`
    }))
    const calls: Array<string> = []
    const result = streamText({
      model: modelFor(fake),
      prompt: "weather in Paris?",
      stopWhen: stepCountIs(5),
      tools: {
        weather: tool({
          description: "get the weather",
          inputSchema: z.object({ city: z.string() }),
          execute: async ({ city }) => {
            calls.push(city)
            return { city, sky: "sunny" }
          }
        })
      }
    })
    const parts = await collect(result.fullStream)
    const types = parts.map((p) => p.type)
    expect(types.filter((t) => t === "tool-input-delta").length).toBeGreaterThanOrEqual(2)
    expect(types).toContain("tool-call")
    expect(types).toContain("tool-result")
    expect(calls).toEqual(["Paris"])
    expect(await result.text).toBe('forecast: {"city":"Paris","sky":"sunny"}')
    expect((await result.steps).length).toBe(2)
    expect(await result.finishReason).toBe("stop")

    expect(fake.requests.length).toBe(2)
    const first = fake.requests[0]!.body
    expect(first.tools?.[0]?.function.name).toBe("weather")
    const second = fake.requests[1]!.body
    const assistant = second.messages.find((m) => m.role === "assistant")
    expect(assistant?.tool_calls?.[0]).toMatchObject({
      id: "call_1",
      type: "function",
      function: { name: "weather" }
    })
    expect(JSON.parse(assistant?.tool_calls?.[0]?.function.arguments ?? "null")).toEqual({ city: "Paris" })
    const toolMessage = second.messages.find((m) => m.role === "tool")
    expect(toolMessage?.tool_call_id).toBe("call_1")
    expect(JSON.parse(String(toolMessage?.content))).toEqual({ city: "Paris", sky: "sunny" })
  })

  it("errorAfter (socket destroyed) makes the stream error", async () => {
    fake.script({ errorAfter: "partial answer" })
    const result = streamText({ model: modelFor(fake), prompt: "x", maxRetries: 0, onError: () => {} })
    // A network failure mid-stream makes fullStream itself throw (an SSE error chunk yields an "error" part)
    let text = ""
    let thrown: unknown
    try {
      for await (const p of result.fullStream) if (p.type === "text-delta") text += p.text
    } catch (error) {
      thrown = error
    }
    expect(text).toBe("partial answer")
    expect(String(thrown)).toMatch(/Failed to process successful response/)
    expect(fake.closedConnections).toBe(0)
  })

  it("errorAfter with an SSE error chunk makes the stream error", async () => {
    fake.script({ errorAfter: "partial", mode: "chunk", message: "boom" })
    const result = streamText({ model: modelFor(fake), prompt: "x", maxRetries: 0, onError: () => {} })
    const parts = await collect(result.fullStream)
    const error = parts.find((p) => p.type === "error")
    expect(error).toBeDefined()
    expect(JSON.stringify(error)).toContain("boom")
  })

  it("httpError is surfaced as an API error", async () => {
    fake.script({ httpError: { status: 400, message: "bad model" } })
    await expect(generateText({ model: modelFor(fake), prompt: "x", maxRetries: 0 })).rejects.toThrow(/bad model/)
  })

  it("aborting a slow stream closes the connection and is counted", async () => {
    fake.script({ slow: { text: "one two three four five six seven eight nine ten", delayMs: 200 } })
    const ac = new AbortController()
    const closed = fake.onClosed()
    const result = streamText({ model: modelFor(fake), prompt: "slow", abortSignal: ac.signal, maxRetries: 0 })
    const seen: Array<string> = []
    for await (const p of result.fullStream) {
      if (p.type === "text-delta") {
        seen.push(p.text)
        ac.abort()
      }
    }
    await closed
    expect(fake.closedConnections).toBe(1)
    expect(seen).toEqual(["one"])
  })

  it("notices a hanging stream being aborted (waitForRequests + waitForClosed)", async () => {
    fake.script({ hang: true })
    const ac = new AbortController()
    const result = streamText({ model: modelFor(fake), prompt: "hang", abortSignal: ac.signal, maxRetries: 0 })
    const consumed = collect(result.fullStream)
    await fake.waitForRequests(1)
    ac.abort()
    await fake.waitForClosed(1)
    const parts = await consumed
    expect(parts.some((p) => p.type === "abort")).toBe(true)
    expect(fake.closedConnections).toBe(1)
  })

  it("generateText (non-streaming) works with text, usage and tools", async () => {
    fake.script({ text: "plain answer", reasoning: "hmm" }, { toolCalls: [{ name: "add", args: { a: 2, b: 3 } }] }, (body) => ({
      text: `sum is ${toolResults(body)[0]?.content ?? "?"}`
    }))
    const plain = await generateText({ model: modelFor(fake), prompt: "q" })
    expect(plain.text).toBe("plain answer")
    expect(plain.reasoningText).toBe("hmm")
    expect(plain.usage.inputTokens).toBeGreaterThan(0)
    expect(plain.usage.outputTokens).toBeGreaterThan(0)
    expect(fake.requests[0]!.body.stream).not.toBe(true)

    const looped = await generateText({
      model: modelFor(fake),
      prompt: "add",
      stopWhen: stepCountIs(3),
      tools: {
        add: tool({
          inputSchema: z.object({ a: z.number(), b: z.number() }),
          execute: async ({ a, b }) => a + b
        })
      }
    })
    expect(looped.text).toBe("sum is 5")
    expect(looped.steps.length).toBe(2)
    expect(looped.totalUsage.totalTokens).toBeGreaterThan(0)
  })
})

describe("fakeOpenAI as a scoped Effect", () => {
  it.live("starts and closes with the scope", () =>
    Effect.gen(function* () {
      const fake = yield* Effect.scoped(
        Effect.gen(function* () {
          const fake = yield* fakeOpenAI
          fake.script({ text: "from effect" })
          const text = yield* Effect.promise(() => streamText({ model: modelFor(fake), prompt: "e" }).text)
          expect(text).toBe("from effect")
          return fake
        })
      )
      const after = yield* Effect.promise(() =>
        fetch(`${fake.baseURL}/models`).then(
          () => "open",
          () => "closed"
        )
      )
      expect(after).toBe("closed")
    })
  )
})

describe("fake-cli.mjs", () => {
  const cli = fileURLToPath(new URL("./fake-cli.mjs", import.meta.url))
  const run = (cwd: string, args: Array<string>, env: Record<string, string> = {}) =>
    new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile(cli, args, { cwd, env: { ...process.env, ...env } }, (error, stdout) => {
        resolve({ code: error && typeof error.code === "number" ? error.code : 0, stdout })
      })
    })

  it("echoes the prompt, writes the output file and honours FAKE_CLI_EXIT / FAKE_CLI_SPAM", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fake-cli-"))
    try {
      const ok = await run(dir, ["exec", "do the thing"])
      expect(ok.code).toBe(0)
      expect(ok.stdout).toContain("fake-cli: do the thing")
      expect(ok.stdout).toContain(dir)
      expect(await readFile(join(dir, "fake-cli-output.txt"), "utf8")).toBe("do the thing")

      const failed = await run(dir, ["-p", "x"], { FAKE_CLI_EXIT: "3" })
      expect(failed.code).toBe(3)

      const spam = await run(dir, ["x"], { FAKE_CLI_SPAM: "5000" })
      expect(spam.stdout.length).toBeGreaterThanOrEqual(5000)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
