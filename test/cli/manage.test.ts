import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { ModelPrice } from "../../src/llm/Prices.js"
import { fakeOpenAI } from "../support/FakeOpenAI.js"
import { tempDir, type TestHub } from "../support/Hub.js"
import { runKiris, type Finished } from "../support/KirisProcess.js"
import { startAgentHub, watchProject } from "../support/AgentHub.js"

/** `kiris session …` and `kiris project rename|delete` as a user runs them: a real CLI process against a hub in this process. */

const kiris = (hub: TestHub, args: ReadonlyArray<string>) =>
  runKiris([...args, "--hub", `127.0.0.1:${hub.tcpPort}`, "--token", hub.adminKey], { cwd: tempDir("kiris-cwd-") })

const ok = (run: Finished) => {
  assert.strictEqual(run.code, 0, `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`)
  return run.stdout
}
const lines = (text: string) => text.split("\n").filter((l) => l.trim() !== "")
const cells = (line: string) => line.trim().split(/\s{2,}/)

describe("kiris session and project management commands", () => {
  it.scopedLive(
    "session list shows totals and cost (unknown without a price); rename, archive, delete; project rename and delete --confirm",
    () =>
      Effect.gen(function* () {
        const fake = yield* fakeOpenAI
        const hub = yield* startAgentHub(fake, { modelPrices: { "openai-compatible:priced": ModelPrice.make({ input: 2, output: 10 }) } })
        const client = yield* hub.tcpClient()
        const project = yield* client.project.create({ name: "cli-managed" })
        const at = { projectId: project.id }
        const priced = yield* client.session.create({ ...at, model: "openai-compatible:priced", title: "priced" })
        const unpriced = yield* client.session.create({ ...at, title: "unpriced" })
        const watch = yield* watchProject(client, project.id)
        fake.script(
          { text: "a", usage: { prompt_tokens: 1000, completion_tokens: 500 } },
          { text: "b", usage: { prompt_tokens: 10, completion_tokens: 5 } }
        )
        for (const s of [priced, unpriced]) {
          yield* client.session.prompt({ ...at, sessionId: s.id, text: "hi" })
          yield* watch.until((events) =>
            events.some((e) => e.event._tag === "SessionStatus" && e.event.sessionId === s.id && e.event.status === "idle") ? true : undefined
          )
        }

        const table = lines(ok(yield* kiris(hub, ["session", "list", "cli-managed"])))
        assert.deepStrictEqual(cells(table[0]!), ["ID", "TITLE", "MODEL", "STATUS", "UPDATED", "TOKENS", "COST"])
        const rows = table.slice(1).map(cells)
        assert.deepStrictEqual(
          rows.map((r) => [r[0], r[1], r[3], r[5], r[6]]),
          [
            [priced.id, "priced", "idle", "1000 in / 500 out", "$0.0070"],
            [unpriced.id, "unpriced", "idle", "10 in / 5 out", "unknown"]
          ]
        )

        ok(yield* kiris(hub, ["session", "rename", project.id, unpriced.id, "no price"]))
        ok(yield* kiris(hub, ["session", "archive", project.id, priced.id]))
        const visible = JSON.parse(ok(yield* kiris(hub, ["session", "list", project.id, "--json"]))) as Array<{ id: string; title: string }>
        assert.deepStrictEqual(
          visible.map((s) => [s.id, s.title]),
          [[unpriced.id, "no price"]]
        )
        const all = JSON.parse(ok(yield* kiris(hub, ["session", "list", project.id, "--all", "--json"]))) as Array<{ id: string; archived: boolean }>
        assert.deepStrictEqual(
          all.map((s) => [s.id, s.archived]),
          [
            [priced.id, true],
            [unpriced.id, false]
          ]
        )
        assert.strictEqual(ok(yield* kiris(hub, ["session", "delete", project.id, unpriced.id])).trim(), `deleted session ${unpriced.id}`)
        assert.deepStrictEqual(
          (yield* client.session.list({ ...at, includeArchived: true })).map((s) => s.id),
          [priced.id]
        )

        ok(yield* kiris(hub, ["project", "rename", "cli-managed", "renamed"]))
        assert.strictEqual((yield* client.project.get(at)).name, "renamed")

        const unconfirmed = yield* kiris(hub, ["project", "delete", "renamed"])
        assert.strictEqual(unconfirmed.code, 1)
        assert.match(unconfirmed.stderr, /run again with --confirm/)
        const dir = path.join(hub.dataDir, "projects", project.id)
        assert.isTrue(fs.existsSync(dir))
        const unknown = yield* kiris(hub, ["project", "delete", "no-such-project", "--confirm"])
        assert.strictEqual(unknown.code, 1)
        assert.match(unknown.stderr, /no project named or with id "no-such-project"/)

        assert.strictEqual(ok(yield* kiris(hub, ["project", "delete", "renamed", "--confirm"])).trim(), `deleted project renamed (${project.id})`)
        assert.isFalse(fs.existsSync(dir))
        assert.deepStrictEqual(yield* client.project.list(), [])
      }),
    { timeout: 120_000 }
  )
})
