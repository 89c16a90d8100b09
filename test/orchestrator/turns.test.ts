import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { DomainEvent } from "../../src/domain/Event.js"
import type { SessionId } from "../../src/domain/Ids.js"
import type { Part, PartData } from "../../src/domain/Session.js"
import { contentText, fakeOpenAI, toolResults } from "../support/FakeOpenAI.js"
import { tempDir } from "../support/Hub.js"
import { startAgentHub, transports, watchProject } from "../support/AgentHub.js"
import { type Backend, backendConfig, backends } from "../support/Pg.js"

const dataOf = <T extends PartData["_tag"]>(parts: ReadonlyArray<Part>, tag: T) =>
  parts.flatMap((p) => (p.data._tag === tag ? [p.data as Extract<PartData, { _tag: T }>] : []))

const deltas = (events: ReadonlyArray<DomainEvent>) => events.flatMap((e) => (e.event._tag === "PartDelta" ? [e.event.delta] : []))

/** Waits for the session's last published status to be idle (it follows the turn's last message). */
const idle = (watch: Effect.Effect.Success<ReturnType<typeof watchProject>>, sessionId: SessionId) =>
  watch.until((events) => {
    const last = events.findLast((e) => e.event._tag === "SessionStatus" && e.event.sessionId === sessionId)
    return last?.event._tag === "SessionStatus" && last.event.status === "idle" ? true : undefined
  })

const setup = (transport: "tcp" | "ws", backend: Backend) =>
  Effect.gen(function* () {
    const fake = yield* fakeOpenAI
    const hub = yield* startAgentHub(fake, yield* backendConfig(backend))
    const client = transport === "tcp" ? yield* hub.tcpClient() : yield* hub.wsClient()
    const workspace = tempDir("kiris-ws-")
    fs.writeFileSync(path.join(workspace, "hello.txt"), "line one\nline two\nline three\n")
    const project = yield* client.project.create({ name: "agent", description: "", workspace })
    const session = yield* client.session.create({ projectId: project.id })
    const watch = yield* watchProject(client, project.id)
    return { fake, hub, client, project, session, watch, workspace }
  })

/** Both transports on SQLite; the PostgreSQL store over one of them. */
const matrix = backends.flatMap((backend) => (backend === "sqlite" ? transports : (["tcp"] as const)).map((transport) => ({ transport, backend })))

for (const { backend, transport } of matrix) {
  describe(`agent turns over ${transport} on ${backend}`, () => {
    it.scopedLive("streams text, records it, and counts tokens", () =>
      Effect.gen(function* () {
        const { client, fake, project, session, watch } = yield* setup(transport, backend)
        assert.strictEqual(session.model, "openai-compatible:fake")
        fake.script({ text: "hello from the model", usage: { prompt_tokens: 12, completion_tokens: 5 } })
        const started = yield* client.session.prompt({ projectId: project.id, sessionId: session.id, text: "say hello" })
        assert.strictEqual(started._tag, "Started")
        const [done] = yield* watch.turns(session.id)
        yield* idle(watch, session.id)
        assert.strictEqual(done?.status, "completed")
        assert.strictEqual(done?.finishReason, "stop")
        assert.strictEqual(deltas(yield* watch.events).join(""), "hello from the model")

        const history = yield* client.session.get({ projectId: project.id, sessionId: session.id })
        assert.deepStrictEqual(
          history.messages.map((m) => m.message.role),
          ["user", "assistant"]
        )
        assert.strictEqual(dataOf(history.messages[0]!.parts, "text")[0]?.text, "say hello")
        const answer = history.messages[1]!
        assert.strictEqual(dataOf(answer.parts, "text")[0]?.text, "hello from the model")
        assert.deepStrictEqual(
          answer.parts.map((p) => p.data._tag),
          ["step-start", "text", "step-finish"]
        )
        assert.strictEqual(answer.message.usage.inputTokens, 12)
        assert.strictEqual(answer.message.usage.outputTokens, 5)
        assert.strictEqual(history.session.title, "say hello")
        assert.strictEqual(history.session.status, "idle")
        const totals = yield* client.session.totals({ projectId: project.id, sessionId: session.id })
        assert.strictEqual(totals.session?.inputTokens, 12)
        assert.strictEqual(totals.project.outputTokens, 5)
      })
    )

    it.scopedLive("records reasoning before the text", () =>
      Effect.gen(function* () {
        const { client, fake, project, session, watch } = yield* setup(transport, backend)
        fake.script({ reasoning: "let me think about it", text: "forty-two" })
        yield* client.session.prompt({ projectId: project.id, sessionId: session.id, text: "the answer?" })
        yield* watch.turns(session.id)
        const history = yield* client.session.get({ projectId: project.id, sessionId: session.id })
        const parts = history.messages[1]!.parts
        assert.deepStrictEqual(
          parts.map((p) => p.data._tag),
          ["step-start", "reasoning", "text", "step-finish"]
        )
        assert.strictEqual(dataOf(parts, "reasoning")[0]?.text, "let me think about it")
        assert.strictEqual(dataOf(parts, "text")[0]?.text, "forty-two")
      })
    )

    it.scopedLive("runs a multi-step tool loop and replays calls and results on the next turn", () =>
      Effect.gen(function* () {
        const { client, fake, project, session, watch } = yield* setup(transport, backend)
        fake.script(
          { toolCalls: [{ id: "call_a", name: "read", args: { path: "hello.txt" } }] },
          {
            toolCalls: [
              { id: "call_b", name: "list", args: { path: "." } },
              { id: "call_c", name: "read", args: { nope: 1 } }
            ]
          },
          { text: "the file has three lines" },
          { text: "second turn answer" }
        )
        yield* client.session.prompt({ projectId: project.id, sessionId: session.id, text: "read hello.txt" })
        const [first] = yield* watch.turns(session.id)
        assert.strictEqual(first?.status, "completed")
        const history = yield* client.session.get({ projectId: project.id, sessionId: session.id })
        const tools = dataOf(history.messages[1]!.parts, "tool")
        assert.deepStrictEqual(
          tools.map((t) => [t.callId, t.tool, t.status]),
          [
            ["call_a", "read", "completed"],
            ["call_b", "list", "completed"],
            ["call_c", "read", "error"]
          ]
        )
        assert.match(String((tools[0]!.output as { output: string }).output), /line two/)
        assert.deepStrictEqual(tools[0]!.input, { path: "hello.txt" })
        assert.match(tools[2]!.error ?? "", /invalid arguments/)
        assert.strictEqual(dataOf(history.messages[1]!.parts, "step-start").length, 3)
        // the second step's request carried the first call's result
        assert.match(toolResults(fake.requests[1]!.body)[0]?.content ?? "", /line one/)

        yield* client.session.prompt({ projectId: project.id, sessionId: session.id, text: "and now?" })
        yield* watch.turns(session.id, 2)
        const second = fake.requests[3]!.body
        const assistantCalls = second.messages.flatMap((m) => (m.role === "assistant" ? (m.tool_calls ?? []) : []))
        assert.deepStrictEqual(
          assistantCalls.map((c) => [c.id, c.function.name]),
          [
            ["call_a", "read"],
            ["call_b", "list"],
            ["call_c", "read"]
          ]
        )
        assert.deepStrictEqual(JSON.parse(assistantCalls[0]!.function.arguments), { path: "hello.txt" })
        const results = toolResults(second)
        assert.deepStrictEqual(
          results.map((r) => r.tool_call_id),
          ["call_a", "call_b", "call_c"]
        )
        assert.match(results[0]!.content, /line three/)
        assert.match(results[2]!.content, /invalid arguments/)
        const users = second.messages.filter((m) => m.role === "user").map(contentText)
        assert.deepStrictEqual(users, ["read hello.txt", "and now?"])
        assert.ok(second.messages.some((m) => m.role === "assistant" && contentText(m) === "the file has three lines"))
      })
    )

    it.scopedLive("marks a message failing mid-stream as error, keeping the partial text", () =>
      Effect.gen(function* () {
        const { client, fake, project, session, watch } = yield* setup(transport, backend)
        fake.script({ errorAfter: "partial answer", mode: "chunk", message: "upstream exploded" })
        yield* client.session.prompt({ projectId: project.id, sessionId: session.id, text: "go" })
        const [failed] = yield* watch.turns(session.id)
        assert.strictEqual(failed?.status, "error")
        assert.match(failed?.error ?? "", /upstream exploded/)

        fake.script({ errorAfter: "cut", mode: "destroy" })
        yield* client.session.prompt({ projectId: project.id, sessionId: session.id, text: "again" })
        const turns = yield* watch.turns(session.id, 2)
        yield* idle(watch, session.id)
        assert.strictEqual(turns[1]?.status, "error")
        assert.ok((turns[1]?.error ?? "").length > 0)
        const history = yield* client.session.get({ projectId: project.id, sessionId: session.id })
        assert.strictEqual(dataOf(history.messages[1]!.parts, "text")[0]?.text, "partial answer")
        assert.strictEqual(history.messages[3]!.message.status, "error")
        assert.strictEqual(history.session.status, "idle")
      })
    )

    it.scopedLive("streams a slow reply as several deltas in order", () =>
      Effect.gen(function* () {
        const { client, fake, project, session, watch } = yield* setup(transport, backend)
        let release!: () => void
        const gate = new Promise<void>((resolve) => (release = resolve))
        fake.script({ slow: { text: "one two three four", delayMs: 80, until: gate } })
        yield* client.session.prompt({ projectId: project.id, sessionId: session.id, text: "count" })
        const firstDelta = yield* watch.until((events) => (deltas(events).length > 0 ? deltas(events)[0] : undefined))
        assert.strictEqual(firstDelta, "one")
        const running = yield* client.session.get({ projectId: project.id, sessionId: session.id })
        assert.strictEqual(running.session.status, "running")
        assert.strictEqual(running.messages[1]?.message.status, "running")
        release()
        yield* watch.turns(session.id)
        const all = deltas(yield* watch.events)
        assert.ok(all.length >= 2, `expected several deltas, got ${JSON.stringify(all)}`)
        assert.strictEqual(all.join(""), "one two three four")
      })
    )
  })
}
