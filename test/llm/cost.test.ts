import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as path from "node:path"
import type { SessionId } from "../../src/domain/Ids.js"
import { ModelPrice, priceOf } from "../../src/llm/Prices.js"
import { toUsage } from "../../src/orchestrator/TurnRecorder.js"
import { projectMigrations } from "../../src/storage/migrations/project.js"
import { openSqlite } from "../../src/storage/Sqlite.js"
import { fakeOpenAI } from "../support/FakeOpenAI.js"
import { tempDir } from "../support/Hub.js"
import { startAgentHub, watchProject } from "../support/AgentHub.js"

const idleCount = (events: ReadonlyArray<{ readonly event: { readonly _tag: string } }>, sessionId: SessionId) =>
  events.filter((e) => {
    const body = e.event as { _tag: string; sessionId?: string; status?: string }
    return body._tag === "SessionStatus" && body.sessionId === sessionId && body.status === "idle"
  }).length

describe("cost", () => {
  it.scopedLive("a priced model's cost per message, session and project; an unpriced one is unknown, not 0", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      // USD per million tokens: 1000 in + 500 out = 0.002 + 0.005; 2000 in + 100 out = 0.004 + 0.001.
      const hub = yield* startAgentHub(fake, { modelPrices: { "openai-compatible:priced": ModelPrice.make({ input: 2, output: 10 }) } })
      const client = yield* hub.wsClient()
      const project = yield* client.project.create({ name: "costs" })
      const watch = yield* watchProject(client, project.id)
      const waitIdle = (sessionId: SessionId, n: number) => watch.until((events) => (idleCount(events, sessionId) >= n ? true : undefined))

      const priced = yield* client.session.create({ projectId: project.id, model: "openai-compatible:priced" })
      assert.strictEqual(priced.totals.cost, 0)
      fake.script(
        { text: "one", usage: { prompt_tokens: 1000, completion_tokens: 500 } },
        { text: "two", usage: { prompt_tokens: 2000, completion_tokens: 100 } }
      )
      yield* client.session.prompt({ projectId: project.id, sessionId: priced.id, text: "first" })
      yield* waitIdle(priced.id, 1)
      yield* client.session.prompt({ projectId: project.id, sessionId: priced.id, text: "second" })
      yield* waitIdle(priced.id, 2)

      const history = yield* client.session.get({ projectId: project.id, sessionId: priced.id })
      const answers = history.messages.filter((m) => m.message.role === "assistant").map((m) => m.message.usage)
      assert.deepStrictEqual(
        answers.map((u) => [u.inputTokens, u.outputTokens]),
        [
          [1000, 500],
          [2000, 100]
        ]
      )
      assert.closeTo(answers[0]!.cost!, 0.007, 1e-12)
      assert.closeTo(answers[1]!.cost!, 0.005, 1e-12)
      const step = history.messages[1]!.parts.find((p) => p.data._tag === "step-finish")
      assert.closeTo((step!.data as { usage: { cost: number } }).usage.cost, 0.007, 1e-12)
      assert.closeTo(history.session.totals.cost!, 0.012, 1e-12)
      const before = yield* client.session.totals({ projectId: project.id, sessionId: priced.id })
      assert.closeTo(before.session!.cost!, 0.012, 1e-12)
      assert.closeTo(before.project.cost!, 0.012, 1e-12)

      const unpriced = yield* client.session.create({ projectId: project.id, model: "openai-compatible:unpriced" })
      fake.script({ text: "three", usage: { prompt_tokens: 300, completion_tokens: 30 } })
      yield* client.session.prompt({ projectId: project.id, sessionId: unpriced.id, text: "third" })
      yield* waitIdle(unpriced.id, 1)
      const unknown = yield* client.session.get({ projectId: project.id, sessionId: unpriced.id })
      const answer = unknown.messages.find((m) => m.message.role === "assistant")!.message
      assert.deepStrictEqual([answer.usage.inputTokens, answer.usage.outputTokens, answer.usage.cost], [300, 30, null])
      assert.strictEqual(unknown.session.totals.cost, null)
      const after = yield* client.session.totals({ projectId: project.id, sessionId: unpriced.id })
      assert.strictEqual(after.session!.cost, null)
      assert.deepStrictEqual([after.project.inputTokens, after.project.outputTokens, after.project.cost], [3300, 630, null])
      // The priced session's own total stays known.
      const listed = yield* client.session.list({ projectId: project.id })
      assert.closeTo(listed.find((s) => s.id === priced.id)!.totals.cost!, 0.012, 1e-12)
    })
  )

  it("the price table matches by provider and model id; configured prices win; a provider's own cost wins over both", () => {
    assert.deepStrictEqual(priceOf("openai:gpt-4o-2024-08-06"), priceOf("openai:gpt-4o"))
    assert.notDeepEqual(priceOf("openai:gpt-4o-mini"), priceOf("openai:gpt-4o"))
    assert.strictEqual(priceOf("openai:gpt-4o-mini")?.input, 0.15)
    assert.strictEqual(priceOf("anthropic:claude-3-5-haiku-latest")?.output, 4)
    assert.strictEqual(priceOf("anthropic:claude-sonnet-4-5-20250929")?.input, 3)
    assert.isDefined(priceOf("openai:gpt-5-mini"))
    assert.isDefined(priceOf("openai:o4-mini"))
    assert.isUndefined(priceOf("anthropic:gpt-4o"))
    assert.isUndefined(priceOf("openai-compatible:gpt-4o"))
    assert.isUndefined(priceOf("openai:gpt-4ofoo"))
    const overrides = { "openai:gpt-4o": ModelPrice.make({ input: 1, output: 1 }), "ollama-ish:llama": ModelPrice.make({ input: 0, output: 0 }) }
    assert.strictEqual(priceOf("openai:gpt-4o-2024-08-06", overrides)?.input, 1)
    assert.strictEqual(priceOf("openai:gpt-4o-mini", overrides)?.input, 0.15)

    const tokens = { inputTokens: 1000, outputTokens: 10, inputTokenDetails: { cacheReadTokens: 400 }, outputTokenDetails: { reasoningTokens: 0 } }
    // gpt-4o: 600 × 2.5 + 400 × 1.25 + 10 × 10 per million.
    assert.closeTo(toUsage(tokens, "openai:gpt-4o").cost!, (600 * 2.5 + 400 * 1.25 + 10 * 10) / 1e6, 1e-15)
    assert.strictEqual(toUsage({ ...tokens, raw: { cost: 0.5 } }, "openai:gpt-4o").cost, 0.5)
    assert.strictEqual(toUsage(tokens, "openai-compatible:local").cost, null)
    assert.strictEqual(toUsage(tokens, null).cost, null)
  })

  it.scoped("the migration keeps known costs and marks costs stored as 0 for used tokens unknown", () =>
    Effect.gen(function* () {
      const file = path.join(tempDir(), "project.db")
      // The schema before costs became nullable: migrations 1 to 3.
      const before = Object.fromEntries(Object.entries(projectMigrations).filter(([id]) => Number(id.split("_")[0]) <= 3))
      const old = yield* openSqlite(file, before)
      yield* Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO sessions (id, title, agent, model, created_at, updated_at, input_tokens, output_tokens, cost)
          VALUES ('ses_paid', '', 'default', 'openrouter:x', 1, 1, 10, 5, 0.25), ('ses_free', '', 'default', 'openai:x', 2, 2, 10, 5, 0)`
        yield* sql`INSERT INTO messages (id, session_id, role, status, input_tokens, output_tokens, cost, created_at)
          VALUES ('msg_u', 'ses_free', 'user', 'completed', 0, 0, 0, 1), ('msg_a', 'ses_free', 'assistant', 'completed', 10, 5, 0, 2),
                 ('msg_p', 'ses_paid', 'assistant', 'completed', 10, 5, 0.25, 3)`
      }).pipe(Effect.provideService(SqlClient.SqlClient, old))
      yield* old.unsafe("PRAGMA wal_checkpoint(TRUNCATE)")
      const sql = yield* openSqlite(file, projectMigrations)
      const messages = yield* sql<{ id: string; cost: number | null }>`SELECT id, cost FROM messages ORDER BY id`
      assert.deepStrictEqual(
        messages.map((m) => [m.id, m.cost]),
        [
          ["msg_a", null],
          ["msg_p", 0.25],
          ["msg_u", 0]
        ]
      )
      const sessions = yield* sql<{
        id: string
        cost: number | null
        archived_at: number | null
      }>`SELECT id, cost, archived_at FROM sessions ORDER BY id`
      assert.deepStrictEqual(
        sessions.map((s) => [s.id, s.cost, s.archived_at]),
        [
          ["ses_free", null, null],
          ["ses_paid", 0.25, null]
        ]
      )
    }).pipe(Effect.provide(Reactivity.layer))
  )
})
