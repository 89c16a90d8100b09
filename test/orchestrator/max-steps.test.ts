import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { endlessToolCalls, fakeOpenAI } from "../support/FakeOpenAI.js"
import { tempDir } from "../support/Hub.js"
import { startAgentHub, watchProject } from "../support/AgentHub.js"
import { type Backend, backendConfig, backends } from "../support/Pg.js"

const setup = (backend: Backend) =>
  Effect.gen(function* () {
    const fake = yield* fakeOpenAI
    const hub = yield* startAgentHub(fake, { ...(yield* backendConfig(backend)), agentMaxSteps: 3 })
    const client = yield* hub.tcpClient()
    const workspace = tempDir("kiris-ws-")
    fs.writeFileSync(path.join(workspace, "hello.txt"), "hello\n")
    const project = yield* client.project.create({ name: "steps", description: "", workspace })
    const session = yield* client.session.create({ projectId: project.id })
    const watch = yield* watchProject(client, project.id)
    return { fake, client, project, session, watch }
  })

describe.each(backends)("the agentMaxSteps limit on %s", (backend) => {
  it.scopedLive("a model still calling tools at the limit ends the turn as an error, not an answer", () =>
    Effect.gen(function* () {
      const { client, fake, project, session, watch } = yield* setup(backend)
      fake.setDefault(endlessToolCalls("read", { path: "hello.txt" }))
      yield* client.session.prompt({ projectId: project.id, sessionId: session.id, text: "read forever" })
      const [turn] = yield* watch.turns(session.id)
      assert.strictEqual(turn?.status, "error")
      assert.strictEqual(turn?.finishReason, "max-steps")
      assert.strictEqual(turn?.error, "stopped after 3 steps (agentMaxSteps) while the model was still calling tools")
      assert.strictEqual(fake.requests.length, 3)
      yield* watch.until((events) =>
        events.some((e) => e.event._tag === "SessionStatus" && e.event.sessionId === session.id && e.event.status === "idle") ? true : undefined
      )

      const history = yield* client.session.get({ projectId: project.id, sessionId: session.id })
      const answer = history.messages[1]!
      assert.strictEqual(answer.message.status, "error")
      assert.strictEqual(answer.message.finishReason, "max-steps")
      const tools = answer.parts.flatMap((p) => (p.data._tag === "tool" ? [p.data] : []))
      assert.deepStrictEqual(
        tools.map((t) => t.status),
        ["completed", "completed", "completed"]
      )
      assert.strictEqual(history.session.status, "idle")
    })
  )

  it.scopedLive("an answer in the last allowed step completes normally", () =>
    Effect.gen(function* () {
      const { client, fake, project, session, watch } = yield* setup(backend)
      fake.script(
        { toolCalls: [{ name: "read", args: { path: "hello.txt" } }] },
        { toolCalls: [{ name: "read", args: { path: "hello.txt" } }] },
        { text: "it says hello" }
      )
      yield* client.session.prompt({ projectId: project.id, sessionId: session.id, text: "read it twice" })
      const [turn] = yield* watch.turns(session.id)
      assert.strictEqual(turn?.status, "completed")
      assert.strictEqual(turn?.finishReason, "stop")
      assert.isNull(turn?.error ?? null)
      assert.strictEqual(fake.requests.length, 3)
    })
  )
})
