import { createOpenAICompatible } from "@ai-sdk/openai-compatible"
import { assert, describe, layer } from "@effect/vitest"
import { generateText, stepCountIs } from "ai"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { SessionId } from "../../src/domain/Ids.js"
import { SubAgents } from "../../src/tools/SubAgents.js"
import { ToolRegistry } from "../../src/tools/ToolRegistry.js"
import { fakeOpenAI, toolResults } from "../support/FakeOpenAI.js"
import { ToolHarness } from "./Harness.js"

layer(ToolHarness.allowAll, { excludeTestServices: true })("ToolRegistry", (it) => {
  describe("execute", () => {
    it.effect("reports invalid arguments and unknown tools as error results", () =>
      Effect.gen(function* () {
        const h = yield* ToolHarness
        const wrongType = yield* h.exec("read", { path: 42 })
        assert.isFalse(wrongType.ok)
        assert.match(wrongType.ok ? "" : wrongType.error, /^invalid arguments for read:[\s\S]*path[\s\S]*Expected string, actual 42/)
        const missing = yield* h.exec("edit", { path: "x.ts", newString: "b" })
        assert.match(missing.ok ? "" : missing.error, /^invalid arguments for edit:[\s\S]*oldString[\s\S]*is missing/)
        const notObject = yield* h.exec("bash", "ls")
        assert.match(notObject.ok ? "" : notObject.error, /^invalid arguments for bash/)
        const unknown = yield* h.exec("teleport", {})
        assert.strictEqual(
          unknown.ok ? "" : unknown.error,
          "unknown tool: teleport; available: read, write, edit, list, glob, grep, bash, task, enqueue"
        )
      })
    )

    it.effect("task runs a sub-agent from the caller's context, and says so when there is none", () =>
      Effect.gen(function* () {
        const h = yield* ToolHarness
        const none = yield* h.exec("task", { prompt: "summarize" })
        assert.deepStrictEqual(none, { ok: false, error: "sub-agents are not available in this context" })
        const seen: Array<unknown> = []
        const subAgents = SubAgents.of({
          run: (parent, input) => {
            seen.push({ session: parent.sessionId, ...input })
            return input.prompt === "fail"
              ? Effect.fail("sub-agent gave up")
              : Effect.succeed({ answer: `answer to ${input.prompt}`, sessionId: SessionId.make("ses_child") })
          }
        })
        const done = yield* h.exec("task", { prompt: "summarize", agent: "explore", remote: true }).pipe(Effect.provideService(SubAgents, subAgents))
        assert.deepStrictEqual(done, {
          ok: true,
          output: "answer to summarize\n\nsession: ses_child",
          metadata: { agent: "explore", remote: true, sessionId: "ses_child" }
        })
        const failed = yield* h.exec("task", { prompt: "fail" }).pipe(Effect.provideService(SubAgents, subAgents))
        assert.deepStrictEqual(failed, { ok: false, error: "sub-agent gave up" })
        assert.deepStrictEqual(seen[0], { session: "ses_test", prompt: "summarize", agent: "explore", remote: true })
        assert.deepStrictEqual(seen[1], { session: "ses_test", prompt: "fail", remote: false })
      })
    )
  })

  describe("toolsFor", () => {
    it.scoped("serves the tools to a real model: JSON schemas with descriptions, errors returned to the model", () =>
      Effect.gen(function* () {
        const h = yield* ToolHarness
        const fake = yield* fakeOpenAI
        fs.writeFileSync(path.join(h.workspace, "hello.txt"), "hello world\n")
        fake.script(
          {
            toolCalls: [
              { name: "read", args: { path: 123 } },
              { name: "read", args: { path: "hello.txt" } },
              { name: "read", args: { path: "../etc/passwd" } }
            ]
          },
          { text: "done" }
        )
        const model = createOpenAICompatible({ name: "fake", baseURL: fake.baseURL, apiKey: "x" }).chatModel("m")
        const text = yield* h.inProject(
          Effect.gen(function* () {
            const tools = yield* (yield* ToolRegistry).toolsFor(h.ctx)
            const result = yield* Effect.promise(() => generateText({ model, tools, prompt: "read it", stopWhen: stepCountIs(3), maxRetries: 0 }))
            return result.text
          })
        )
        assert.strictEqual(text, "done")
        const advertised = fake.requests[0]!.body.tools ?? []
        assert.deepStrictEqual(
          advertised.map((t) => t.function.name),
          ["read", "write", "edit", "list", "glob", "grep", "bash", "task", "enqueue"]
        )
        const read = advertised.find((t) => t.function.name === "read")!.function.parameters as {
          properties: Record<string, { type: string; description: string }>
          required: Array<string>
        }
        assert.deepStrictEqual(read.required, ["path"])
        assert.strictEqual(read.properties["path"]?.description, "File path, relative to the workspace root")
        assert.strictEqual(read.properties["offset"]?.type, "integer")
        const results = toolResults(fake.requests[1]!.body).map((r) => r.content)
        assert.strictEqual(results.length, 3)
        assert.match(results[0]!, /invalid arguments for read/)
        assert.match(results[1]!, /1\thello world/)
        assert.match(results[2]!, /path escapes the workspace: \.\.\/etc\/passwd/)
      })
    )
  })
})
