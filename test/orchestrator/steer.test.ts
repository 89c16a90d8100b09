import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { SessionId } from "../../src/domain/Ids.js"
import type { PartData } from "../../src/domain/Session.js"
import { contentText, fakeOpenAI, lastUserText } from "../support/FakeOpenAI.js"
import { tempDir } from "../support/Hub.js"
import { assistantMessages, startAgentHub, watchProject } from "../support/AgentHub.js"
import { type Backend, backendConfig, backends } from "../support/Pg.js"

const texts = (parts: ReadonlyArray<{ readonly data: PartData }>) => parts.flatMap((p) => (p.data._tag === "text" ? [p.data.text] : [])).join("")

const gate = () => {
  let open!: () => void
  const closed = new Promise<void>((resolve) => (open = resolve))
  return { closed, open }
}

const setup = (backend: Backend) =>
  Effect.gen(function* () {
    const fake = yield* fakeOpenAI
    const hub = yield* startAgentHub(fake, yield* backendConfig(backend))
    const client = yield* hub.tcpClient()
    const workspace = tempDir("kiris-ws-")
    fs.writeFileSync(path.join(workspace, "hello.txt"), "hello\n")
    const project = yield* client.project.create({ name: "steer", description: "", workspace })
    const session = yield* client.session.create({ projectId: project.id })
    const watch = yield* watchProject(client, project.id)
    const prompt = (text: string, mode?: "steer") =>
      client.session.prompt({ projectId: project.id, sessionId: session.id, text, ...(mode ? { mode } : {}) })
    /** Resolves once the session was published idle after at least `turns` finished turns. */
    const idleAfter = (sessionId: SessionId, turns: number) =>
      watch.until((events) => {
        const finished = assistantMessages(events, sessionId).filter((m) => m.status !== "running").length
        const last = events.findLast((e) => e.event._tag === "SessionStatus" && e.event.sessionId === sessionId)
        return finished >= turns && last?.event._tag === "SessionStatus" && last.event.status === "idle" ? true : undefined
      })
    return { fake, client, project, session, watch, prompt, idleAfter }
  })

describe.each(backends)("steering a running turn on %s", (backend) => {
  it.scopedLive("a steered prompt reaches the model's next call without cancelling the turn", () =>
    Effect.gen(function* () {
      const { client, fake, project, session, watch, prompt, idleAfter } = yield* setup(backend)
      const hold = gate()
      fake.script({ toolCalls: [{ name: "read", args: { path: "hello.txt" } }], until: hold.closed }, { text: "read it, and noted" })
      const started = yield* prompt("read hello.txt")
      assert.strictEqual(started._tag, "Started")
      yield* Effect.promise(() => fake.waitForRequests(1))

      const steered = yield* prompt("also say goodbye", "steer")
      assert.strictEqual(steered._tag, "Started")
      hold.open()

      const [turn] = yield* watch.turns(session.id)
      assert.strictEqual(turn?.status, "completed")
      yield* idleAfter(session.id, 1)
      assert.strictEqual(fake.requests.length, 2)
      const [first, second] = fake.requests.map((r) => r.body)
      assert.notInclude(first!.messages.map(contentText).join("\n"), "also say goodbye")
      assert.strictEqual(lastUserText(second!), "also say goodbye")
      // The steered prompt follows the tool result of the step before it.
      assert.deepStrictEqual(second!.messages.map((m) => m.role).slice(-3), ["assistant", "tool", "user"])

      // Stored and published like any prompt; one assistant message, not cancelled.
      const events = yield* watch.events
      assert.isTrue(
        events.some((e) => e.event._tag === "MessageUpdated" && e.event.message.id === (steered._tag === "Started" ? steered.messageId : ""))
      )
      assert.strictEqual(assistantMessages(events, session.id).length, 1)
      const history = yield* client.session.get({ projectId: project.id, sessionId: session.id })
      assert.deepStrictEqual(
        history.messages.map((m) => m.message.role),
        ["user", "assistant", "user"]
      )
      assert.strictEqual(texts(history.messages[2]!.parts), "also say goodbye")
      assert.strictEqual(history.messages[1]!.message.status, "completed")
    })
  )

  it.scopedLive("with no turn running, a steered prompt starts one", () =>
    Effect.gen(function* () {
      const { fake, session, watch, prompt } = yield* setup(backend)
      fake.setDefault((body) => ({ text: `answer to ${lastUserText(body)}` }))
      const started = yield* prompt("hello there", "steer")
      assert.strictEqual(started._tag, "Started")
      const [turn] = yield* watch.turns(session.id)
      assert.strictEqual(turn?.status, "completed")
      assert.strictEqual(lastUserText(fake.requests[0]!.body), "hello there")
    })
  )

  it.scopedLive("a prompt steered into a turn's last step gets a turn of its own", () =>
    Effect.gen(function* () {
      const { client, fake, project, session, watch, prompt, idleAfter } = yield* setup(backend)
      const hold = gate()
      fake.script({ slow: { text: "final answer", delayMs: 0, until: hold.closed } })
      fake.setDefault((body) => ({ text: `answer to ${lastUserText(body)}` }))
      yield* prompt("one")
      yield* Effect.promise(() => fake.waitForRequests(1))
      yield* prompt("and two", "steer")
      hold.open()

      const turns = yield* watch.turns(session.id, 2)
      assert.deepStrictEqual(
        turns.map((t) => t.status),
        ["completed", "completed"]
      )
      yield* idleAfter(session.id, 2)
      assert.strictEqual(fake.requests.length, 2)
      assert.strictEqual(lastUserText(fake.requests[1]!.body), "and two")
      const history = yield* client.session.get({ projectId: project.id, sessionId: session.id })
      assert.deepStrictEqual(
        history.messages.map((m) => m.message.role),
        ["user", "assistant", "user", "assistant"]
      )
      assert.strictEqual(texts(history.messages[3]!.parts), "answer to and two")
    })
  )
})
