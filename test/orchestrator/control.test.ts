import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { makeHubClient } from "../../src/client/HubClient.js"
import type { PartData } from "../../src/domain/Session.js"
import { fakeOpenAI, lastUserText, toolResults } from "../support/FakeOpenAI.js"
import { tempDir } from "../support/Hub.js"
import { serveKiris } from "../support/KirisProcess.js"
import { fakeModelEnv, startAgentHub, transports, watchedSession, watchProject } from "../support/AgentHub.js"
import { type Backend, backends } from "../support/Pg.js"

const texts = (parts: ReadonlyArray<{ readonly data: PartData }>) => parts.flatMap((p) => (p.data._tag === "text" ? [p.data.text] : [])).join("")

const setup = (transport: "tcp" | "ws", backend: Backend) =>
  Effect.gen(function* () {
    const fake = yield* fakeOpenAI
    return { fake, ...(yield* watchedSession(fake, backend, "control", transport)) }
  })

/** Waits until the turn's request reached the fake server and its first text arrived. */
const streaming = (watch: Effect.Effect.Success<ReturnType<typeof watchProject>>, text: string) =>
  watch.until((events) => (events.some((e) => e.event._tag === "PartDelta" && e.event.delta.includes(text)) ? true : undefined))

/** Both transports on SQLite; the PostgreSQL store over one of them. */
const matrix = backends.flatMap((backend) => (backend === "sqlite" ? transports : (["tcp"] as const)).map((transport) => ({ transport, backend })))

for (const { backend, transport } of matrix) {
  describe(`turn control over ${transport} on ${backend}`, () => {
    it.scopedLive("cancel stops the stream and closes the upstream request", () =>
      Effect.gen(function* () {
        const { client, fake, project, session, watch } = yield* setup(transport, backend)
        fake.script({ hang: true, text: "thinking" })
        yield* client.session.prompt({ projectId: project.id, sessionId: session.id, text: "take forever" })
        yield* streaming(watch, "thinking")
        const closed = fake.onClosed()
        const result = yield* client.session.cancel({ projectId: project.id, sessionId: session.id })
        assert.isTrue(result.cancelled)
        yield* Effect.promise(() => closed).pipe(Effect.timeout("10 seconds"))
        assert.strictEqual(fake.closedConnections, 1)
        const [turn] = yield* watch.turns(session.id)
        assert.strictEqual(turn?.status, "cancelled")
        const history = yield* client.session.get({ projectId: project.id, sessionId: session.id })
        assert.strictEqual(history.session.status, "idle")
        assert.strictEqual(texts(history.messages[1]!.parts), "thinking")
        assert.isFalse((yield* client.session.cancel({ projectId: project.id, sessionId: session.id })).cancelled)
      })
    )

    it.scopedLive("queues prompts sent during a turn and runs them in order", () =>
      Effect.gen(function* () {
        const { client, fake, project, session, watch } = yield* setup(transport, backend)
        let release!: () => void
        const gate = new Promise<void>((resolve) => (release = resolve))
        fake.script({ slow: { text: "first answer here", delayMs: 0, until: gate } })
        fake.setDefault((body) => ({ text: `answer to ${lastUserText(body)}` }))
        const p = { projectId: project.id, sessionId: session.id }
        yield* client.session.prompt({ ...p, text: "one" })
        yield* streaming(watch, "first")
        const two = yield* client.session.prompt({ ...p, text: "two" })
        const three = yield* client.session.prompt({ ...p, text: "three", mode: "queue" })
        assert.strictEqual(two._tag, "Queued")
        assert.strictEqual(three._tag, "Queued")
        const queue = yield* client.session.queue(p)
        assert.deepStrictEqual(
          queue.map((q) => q.text),
          ["two", "three"]
        )
        release()
        yield* watch.turns(session.id, 3)
        assert.deepStrictEqual(
          fake.requests.map((r) => lastUserText(r.body)),
          ["one", "two", "three"]
        )
        const history = yield* client.session.get(p)
        assert.deepStrictEqual(
          history.messages.map((m) => `${m.message.role}:${texts(m.parts)}`),
          ["user:one", "assistant:first answer here", "user:two", "assistant:answer to two", "user:three", "assistant:answer to three"]
        )
        assert.deepStrictEqual(yield* client.session.queue(p), [])
        const events = yield* watch.events
        assert.strictEqual(events.filter((e) => e.event._tag === "PromptQueued").length, 2)
        assert.strictEqual(events.filter((e) => e.event._tag === "PromptDequeued" && e.event.reason === "started").length, 2)
      })
    )

    it.scopedLive("a queued prompt can be dequeued; cancel then starts the next one", () =>
      Effect.gen(function* () {
        const { client, fake, project, session, watch } = yield* setup(transport, backend)
        fake.script({ hang: true, text: "busy" })
        const p = { projectId: project.id, sessionId: session.id }
        yield* client.session.prompt({ ...p, text: "one" })
        yield* streaming(watch, "busy")
        const two = yield* client.session.prompt({ ...p, text: "two" })
        yield* client.session.prompt({ ...p, text: "three" })
        assert.strictEqual(two._tag, "Queued")
        if (two._tag !== "Queued") return
        yield* client.session.dequeue({ ...p, promptId: two.prompt.id })
        const missing = yield* Effect.flip(client.session.dequeue({ ...p, promptId: two.prompt.id }))
        assert.strictEqual(missing._tag, "NotFound")
        assert.deepStrictEqual(
          (yield* client.session.queue(p)).map((q) => q.text),
          ["three"]
        )
        yield* client.session.cancel(p)
        const turns = yield* watch.turns(session.id, 2)
        assert.deepStrictEqual(
          turns.map((t) => t.status),
          ["cancelled", "completed"]
        )
        assert.deepStrictEqual(
          fake.requests.map((r) => lastUserText(r.body)),
          ["one", "three"]
        )
      })
    )

    it.scopedLive("interrupt cancels the running turn and runs the new prompt; reject refuses", () =>
      Effect.gen(function* () {
        const { client, fake, project, session, watch } = yield* setup(transport, backend)
        fake.script({ hang: true, text: "slowly" })
        const p = { projectId: project.id, sessionId: session.id }
        yield* client.session.prompt({ ...p, text: "one" })
        yield* streaming(watch, "slowly")
        const busy = yield* Effect.flip(client.session.prompt({ ...p, text: "nope", mode: "reject" }))
        assert.strictEqual(busy._tag, "SessionBusy")
        const closed = fake.onClosed()
        const started = yield* client.session.prompt({ ...p, text: "two", mode: "interrupt" })
        assert.strictEqual(started._tag, "Started")
        yield* Effect.promise(() => closed).pipe(Effect.timeout("10 seconds"))
        const turns = yield* watch.turns(session.id, 2)
        assert.deepStrictEqual(
          turns.map((t) => t.status),
          ["cancelled", "completed"]
        )
        const history = yield* client.session.get(p)
        assert.deepStrictEqual(
          history.messages.map((m) => m.message.role),
          ["user", "assistant", "user", "assistant"]
        )
        assert.strictEqual(texts(history.messages[2]!.parts), "two")
      })
    )
  })
}

describe("turn events and restarts", () => {
  it.scopedLive("two clients (TCP and WebSocket) watching one session receive identical ordered events", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const hub = yield* startAgentHub(fake)
      const tcp = yield* hub.tcpClient()
      const ws = yield* hub.wsClient()
      const project = yield* tcp.project.create({ name: "watched", description: "" })
      const session = yield* tcp.session.create({ projectId: project.id })
      const a = yield* watchProject(tcp, project.id)
      const b = yield* watchProject(ws, project.id)
      fake.script(
        { reasoning: "plan", text: "looking", toolCalls: [{ name: "list", args: { path: "." } }] },
        { slow: { text: "all done now", delayMs: 30 } }
      )
      yield* ws.session.prompt({ projectId: project.id, sessionId: session.id, text: "look around" })
      yield* a.until((events) => (events.some((e) => e.event._tag === "SessionStatus" && e.event.status === "idle") ? true : undefined))
      yield* b.until((events) => (events.some((e) => e.event._tag === "SessionStatus" && e.event.status === "idle") ? true : undefined))
      const seenA = yield* a.events
      const seenB = yield* b.events
      assert.isAbove(seenA.length, 10)
      assert.deepStrictEqual(seenA, seenB)
      const seqs = seenA.map((e) => e.seq)
      assert.deepStrictEqual(
        seqs,
        [...seqs].sort((x, y) => x - y)
      )
      const tags = seenA.map((e) => e.event._tag)
      assert.strictEqual(tags[0], "MessageUpdated")
      assert.ok(tags.includes("PartDelta") && tags.includes("PartUpdated"))
      assert.strictEqual(tags.at(-1), "SessionStatus")
    })
  )

  it.scopedLive("a turn left running by a killed hub is marked interrupted on the next start, never re-run", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const dataDir = tempDir()
      fake.script({ text: "working", toolCalls: [{ id: "call_sh", name: "bash", args: { command: "echo hi" } }] })
      const { proc, adminKey: key, tcpPort } = yield* serveKiris(dataDir, { env: fakeModelEnv(fake) })
      const { projectId, sessionId } = yield* Effect.scoped(
        Effect.gen(function* () {
          const client = yield* makeHubClient({ transport: "tcp", host: "127.0.0.1", port: tcpPort }, key)
          const project = yield* client.project.create({ name: "crash", description: "" })
          const session = yield* client.session.create({ projectId: project.id })
          const watch = yield* watchProject(client, project.id)
          yield* client.session.prompt({ projectId: project.id, sessionId: session.id, text: "never finishes" })
          // the bash call waits for a permission answer that never comes
          yield* watch.until((events) => (events.some((e) => e.event._tag === "PermissionAsked") ? true : undefined))
          const running = yield* client.session.get({ projectId: project.id, sessionId: session.id })
          assert.strictEqual(running.messages[1]?.parts.find((p) => p.data._tag === "tool")?.data._tag, "tool")
          return { projectId: project.id, sessionId: session.id }
        })
      )
      proc.child.kill("SIGKILL")
      yield* proc.exited()

      const requestsBefore = fake.requests.length
      const hub = yield* startAgentHub(fake, { dataDir })
      const client = yield* hub.tcpClient()
      const history = yield* client.session.get({ projectId, sessionId })
      assert.strictEqual(history.session.status, "idle")
      assert.deepStrictEqual(
        history.messages.map((m) => m.message.status),
        ["completed", "interrupted"]
      )
      const tool = history.messages[1]!.parts.flatMap((p) => (p.data._tag === "tool" ? [p.data] : []))[0]
      assert.deepStrictEqual([tool?.callId, tool?.status], ["call_sh", "error"])
      assert.match(tool?.error ?? "", /hub stopped/)
      assert.strictEqual(texts(history.messages[1]!.parts), "working")
      assert.strictEqual(fake.requests.length, requestsBefore)
      fake.script({ text: "fresh start" })
      const watch = yield* watchProject(client, projectId)
      yield* client.session.prompt({ projectId, sessionId, text: "again" })
      const turns = yield* watch.turns(sessionId, 1)
      assert.strictEqual(turns[0]?.status, "completed")
      const replayed = fake.requests.at(-1)!.body
      assert.deepStrictEqual(
        toolResults(replayed).map((r) => r.tool_call_id),
        ["call_sh"]
      )
      assert.match(toolResults(replayed)[0]!.content, /hub stopped/)
    })
  )
})
