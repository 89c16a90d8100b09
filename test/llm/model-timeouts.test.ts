import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as net from "node:net"
import * as os from "node:os"
import type { ServerConfigShape } from "../../src/config/ServerConfig.js"
import { type FakeOpenAI, fakeOpenAI } from "../support/FakeOpenAI.js"
import { startHub } from "../support/Hub.js"
import { fakeModelConfig, startAgentHub, watchProject } from "../support/AgentHub.js"

/** Short limits: these tests are about what happens when they run out, not about timing. */
const shortTimeouts: Partial<ServerConfigShape> = { modelFirstByteTimeoutSeconds: 0.3, modelIdleTimeoutSeconds: 0.3 }

/** A hub whose model settings are the fake server's, with `model` overriding some of them. */
const hubWith = (fake: FakeOpenAI, model: Record<string, string>) =>
  startHub({ workspaceRoots: [os.tmpdir()], ...shortTimeouts }).pipe(Effect.withConfigProvider(fakeModelConfig(fake, model)))

const setup = (hub: Effect.Effect.Success<ReturnType<typeof startAgentHub>>) =>
  Effect.gen(function* () {
    const client = yield* hub.tcpClient()
    const project = yield* client.project.create({ name: "timeouts", description: "" })
    const session = yield* client.session.create({ projectId: project.id })
    const watch = yield* watchProject(client, project.id)
    const prompt = (text: string) => client.session.prompt({ projectId: project.id, sessionId: session.id, text })
    return { client, project, session, watch, prompt }
  })

/** A port nothing listens on: bound, then closed again. */
const closedPort = Effect.promise(
  () =>
    new Promise<number>((resolve, reject) => {
      const server = net.createServer()
      server.once("error", reject)
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as net.AddressInfo
        server.close(() => resolve(port))
      })
    })
)

describe("model calls that stall or cannot connect", () => {
  it.scopedLive("a server that never answers fails the turn, naming the model and the limit", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const { prompt, session, watch } = yield* setup(yield* startAgentHub(fake, shortTimeouts))
      fake.script({ stall: "headers" })
      yield* prompt("hello?")
      const [turn] = yield* watch.turns(session.id)
      assert.strictEqual(turn?.status, "error")
      assert.include(turn?.error ?? "", "openai-compatible:fake")
      assert.include(turn?.error ?? "", "modelFirstByteTimeoutSeconds")
      // The HTTP request was aborted, not left open.
      yield* Effect.promise(() => fake.waitForClosed(1)).pipe(Effect.timeout("10 seconds"))
    })
  )

  it.scopedLive("headers without a body count as no answer", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const { prompt, session, watch } = yield* setup(yield* startAgentHub(fake, shortTimeouts))
      fake.script({ stall: "body" })
      yield* prompt("hello?")
      const [turn] = yield* watch.turns(session.id)
      assert.strictEqual(turn?.status, "error")
      assert.include(turn?.error ?? "", "modelFirstByteTimeoutSeconds")
    })
  )

  it.scopedLive("a stream that stalls midway fails the turn and keeps what arrived", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const { client, project, prompt, session, watch } = yield* setup(yield* startAgentHub(fake, shortTimeouts))
      fake.script({ stallAfter: "partial answer" })
      yield* prompt("tell me")
      const [turn] = yield* watch.turns(session.id)
      assert.strictEqual(turn?.status, "error")
      assert.include(turn?.error ?? "", "openai-compatible:fake sent no data for 300ms (modelIdleTimeoutSeconds)")
      yield* Effect.promise(() => fake.waitForClosed(1)).pipe(Effect.timeout("10 seconds"))
      const history = yield* client.session.get({ projectId: project.id, sessionId: session.id })
      const text = history.messages[1]!.parts.flatMap((p) => (p.data._tag === "text" ? [p.data.text] : [])).join("")
      assert.strictEqual(text, "partial answer")
    })
  )

  it.scopedLive("a refused connection fails at once, naming the base URL", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const baseURL = `http://127.0.0.1:${yield* closedPort}/v1`
      // Retries allowed: a refused connection still fails without them.
      const hub = yield* hubWith(fake, { KIRIS_OPENAI_COMPATIBLE_BASE_URL: baseURL, KIRIS_LLM_MAX_RETRIES: "2" })
      const { prompt, session, watch } = yield* setup(hub)
      yield* prompt("anyone there?")
      const [turn] = yield* watch.turns(session.id, 1)
      assert.strictEqual(turn?.status, "error")
      assert.include(turn?.error ?? "", baseURL)
      assert.include(turn?.error ?? "", "ECONNREFUSED")
      assert.notInclude(turn?.error ?? "", "Failed after")
    })
  )

  it.scopedLive("a stalled first attempt is retried and the turn completes", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const { prompt, session, watch } = yield* setup(yield* hubWith(fake, { KIRIS_LLM_MAX_RETRIES: "1" }))
      fake.script({ stall: "headers" }, { text: "second time lucky" })
      yield* prompt("hello?")
      const [turn] = yield* watch.turns(session.id)
      assert.strictEqual(turn?.status, "completed")
      assert.strictEqual(turn?.finishReason, "stop")
      assert.strictEqual(fake.requests.length, 2)
      assert.strictEqual(fake.closedConnections, 1)
    })
  )

  it.scopedLive("every attempt stalling ends in an error naming the limit", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const { prompt, session, watch } = yield* setup(yield* hubWith(fake, { KIRIS_LLM_MAX_RETRIES: "1" }))
      fake.setDefault({ stall: "headers" })
      yield* prompt("hello?")
      const [turn] = yield* watch.turns(session.id)
      assert.strictEqual(turn?.status, "error")
      assert.include(turn?.error ?? "", "modelFirstByteTimeoutSeconds")
      assert.strictEqual(fake.requests.length, 2)
    })
  )
})
