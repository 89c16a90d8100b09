import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import type { InvalidInput } from "../../src/domain/Errors.js"
import type { SessionId } from "../../src/domain/Ids.js"
import { fakeOpenAI } from "../support/FakeOpenAI.js"
import { startHub, tempDir } from "../support/Hub.js"
import { until } from "../worker/swarm-support.js"
import { startAgentHub, watchProject } from "../support/AgentHub.js"
import { backendConfig, backends } from "../support/Pg.js"

const reasonOf = (e: { readonly _tag: string }) => {
  assert.strictEqual(e._tag, "InvalidInput")
  return (e as InvalidInput).reason
}

describe.each(backends)("session RPCs on %s", (backend) => {
  it.scopedLive("checks agent, model and project roles", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const hub = yield* startAgentHub(fake, yield* backendConfig(backend))
      const admin = yield* hub.tcpClient()
      const project = yield* admin.project.create({ name: "roles", description: "" })

      const badAgent = yield* Effect.flip(admin.session.create({ projectId: project.id, agent: "wizard" }))
      assert.match(reasonOf(badAgent), /unknown agent "wizard"; available: default, general, explore/)
      const badModel = yield* Effect.flip(admin.session.create({ projectId: project.id, model: "openai:gpt-4o-mini" }))
      assert.match(reasonOf(badModel), /OPENAI_API_KEY is not set/)
      const explore = yield* admin.session.create({ projectId: project.id, agent: "explore", title: "look only" })
      assert.strictEqual(explore.agent, "explore")
      assert.strictEqual(explore.title, "look only")

      yield* admin.user.create({ name: "vic", password: "password-of-vic" })
      yield* admin.project.addMember({ projectId: project.id, user: "vic", role: "viewer" })
      const vicKey = yield* admin.key.create({
        name: "vic",
        scopes: ["read", "write"],
        userId: (yield* admin.user.list()).find((u) => u.name === "vic")!.id
      })
      const vic = yield* hub.wsClient(vicKey.key)
      const listed = yield* vic.session.list({ projectId: project.id })
      assert.deepStrictEqual(
        listed.map((s) => s.id),
        [explore.id]
      )
      const history = yield* vic.session.get({ projectId: project.id, sessionId: explore.id })
      assert.strictEqual(history.messages.length, 0)
      const refused = yield* Effect.flip(vic.session.prompt({ projectId: project.id, sessionId: explore.id, text: "hi" }))
      assert.strictEqual(refused._tag, "Forbidden")
      assert.strictEqual((yield* Effect.flip(vic.session.create({ projectId: project.id })))._tag, "Forbidden")
      assert.strictEqual((yield* Effect.flip(vic.session.cancel({ projectId: project.id, sessionId: explore.id })))._tag, "Forbidden")

      const other = yield* admin.project.create({ name: "other", description: "" })
      const elsewhere = yield* Effect.flip(admin.session.get({ projectId: other.id, sessionId: explore.id }))
      assert.strictEqual(elsewhere._tag, "NotFound")
      const unknown = yield* Effect.flip(admin.session.prompt({ projectId: project.id, sessionId: "ses_nope" as SessionId, text: "hi" }))
      assert.strictEqual(unknown._tag, "NotFound")
      assert.strictEqual(fake.requests.length, 0)
    })
  )

  it.scopedLive("a hub without a configured model refuses new sessions, naming the setting", () =>
    Effect.gen(function* () {
      const hub = yield* startHub(yield* backendConfig(backend)).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
      const client = yield* hub.tcpClient()
      const project = yield* client.project.create({ name: "nomodel", description: "" })
      const error = yield* Effect.flip(client.session.create({ projectId: project.id }))
      assert.match(reasonOf(error), /set KIRIS_MODEL/)
    })
  )

  it.scopedLive("totals add up per session and per project", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const hub = yield* startAgentHub(fake, yield* backendConfig(backend))
      const client = yield* hub.wsClient()
      const project = yield* client.project.create({ name: "totals", description: "" })
      const a = yield* client.session.create({ projectId: project.id })
      const b = yield* client.session.create({ projectId: project.id })
      const watch = yield* watchProject(client, project.id)
      fake.script(
        { text: "a", usage: { prompt_tokens: 10, completion_tokens: 1 } },
        { text: "b", usage: { prompt_tokens: 20, completion_tokens: 2 } }
      )
      yield* client.session.prompt({ projectId: project.id, sessionId: a.id, text: "one" })
      yield* watch.turns(a.id)
      yield* client.session.prompt({ projectId: project.id, sessionId: b.id, text: "two" })
      yield* watch.turns(b.id)
      const totals = yield* client.session.totals({ projectId: project.id, sessionId: b.id })
      assert.deepStrictEqual([totals.session?.inputTokens, totals.session?.outputTokens], [20, 2])
      assert.deepStrictEqual([totals.project.inputTokens, totals.project.outputTokens], [30, 3])
      const updated = (yield* watch.events).filter((e) => e.event._tag === "SessionUpdated")
      assert.ok(updated.length >= 2)
    })
  )

  it.scopedLive("prompts queued when the hub stopped run after it starts again", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const dataDir = tempDir()
      const config = yield* backendConfig(backend)
      const ids = yield* Effect.scoped(
        Effect.gen(function* () {
          const hub = yield* startAgentHub(fake, { ...config, dataDir })
          const client = yield* hub.tcpClient()
          const project = yield* client.project.create({ name: "resume", description: "" })
          const session = yield* client.session.create({ projectId: project.id })
          const watch = yield* watchProject(client, project.id)
          fake.script({ hang: true, text: "partial" })
          yield* client.session.prompt({ projectId: project.id, sessionId: session.id, text: "first" })
          yield* watch.until((events) => (events.some((e) => e.event._tag === "PartDelta") ? true : undefined))
          const queued = yield* client.session.prompt({ projectId: project.id, sessionId: session.id, text: "second" })
          assert.strictEqual(queued._tag, "Queued")
          return { projectId: project.id, sessionId: session.id }
        })
      )
      fake.script({ text: "second answer" })
      const hub = yield* startAgentHub(fake, { ...config, dataDir })
      const client = yield* hub.tcpClient()
      const history = yield* until(
        "the queued prompt to run",
        Effect.map(client.session.get(ids), (h) => (h.session.status === "idle" && h.messages.length === 4 ? h : undefined))
      )
      assert.deepStrictEqual(
        history.messages.map((m) => `${m.message.role}:${m.message.status}`),
        ["user:completed", "assistant:interrupted", "user:completed", "assistant:completed"]
      )
      assert.deepStrictEqual(yield* client.session.queue(ids), [])
    })
  )
})
