import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Option, Redacted, Scope } from "effect"
import type { HubRpcClient } from "../../src/client/HubClient.js"
import type { ProjectId, SessionId } from "../../src/domain/Ids.js"
import type { MessageWithParts, PartData } from "../../src/domain/Session.js"
import { ProjectDb } from "../../src/storage/ProjectDb.js"
import { fakeModelEnv, startAgentHub } from "../support/AgentHub.js"
import { fakeOpenAI, lastUserText } from "../support/FakeOpenAI.js"
import { tempDir } from "../support/Hub.js"
import { serveKiris } from "../support/KirisProcess.js"
import { backends, freshDatabase } from "../support/Pg.js"
import { pollUntil } from "../support/Until.js"
import { makeHubClient } from "../../src/client/HubClient.js"

const texts = (parts: ReadonlyArray<{ readonly data: PartData }>) => parts.flatMap((p) => (p.data._tag === "text" ? [p.data.text] : [])).join("")
const line = (m: MessageWithParts) => `${m.message.role}:${m.message.status}:${texts(m.parts)}`

/** The session's stored messages once `n` assistant turns have finished (read through `client`, polled with a deadline). */
const finished = (client: HubRpcClient, projectId: ProjectId, sessionId: SessionId, n: number) =>
  pollUntil(
    `${n} finished turns`,
    Effect.map(client.session.get({ projectId, sessionId }), (h) => {
      const done = h.messages.filter((m) => m.message.role === "assistant" && m.message.status !== "running")
      return done.length >= n && h.session.status === "idle" ? h.messages : undefined
    }),
    { timeout: "60 seconds", interval: "50 millis" }
  )

/**
 * A fake model whose first call hangs ("busy") and which answers every later prompt with "answer
 * to <prompt>", and hub options sharing one fresh database and one data dir.
 */
const busyModelAndSharedStore = Effect.gen(function* () {
  const fake = yield* fakeOpenAI
  fake.script({ hang: true, text: "busy" })
  fake.setDefault((body) => ({ text: `answer to ${lastUserText(body)}` }))
  const url = yield* freshDatabase
  return { fake, options: { dataDir: tempDir(), databaseUrl: Option.some(Redacted.make(url)) } }
})

describe.runIf(backends.includes("pg"))("two hubs sharing one PostgreSQL database", () => {
  it.scopedLive(
    "prompts for one session sent through both hubs at once run one turn at a time, in the order they were accepted",
    () =>
      Effect.gen(function* () {
        const fake = yield* fakeOpenAI
        let release!: () => void
        const gate = new Promise<void>((resolve) => (release = resolve))
        fake.script({ slow: { text: "first answer", delayMs: 0, until: gate } })
        fake.setDefault((body) => ({ slow: { text: `answer to ${lastUserText(body)}`, delayMs: 5 } }))
        const url = yield* freshDatabase
        const options = { dataDir: tempDir(), databaseUrl: Option.some(Redacted.make(url)) }
        const hubA = yield* startAgentHub(fake, options)
        const hubB = yield* startAgentHub(fake, options)
        const a = yield* hubA.tcpClient()
        const b = yield* hubB.wsClient()
        const project = yield* a.project.create({ name: "shared", description: "" })
        const session = yield* a.session.create({ projectId: project.id })
        const p = { projectId: project.id, sessionId: session.id }

        const sent = ["a1", "b1", "a2", "b2", "a3", "b3"]
        const results = yield* Effect.forEach(sent, (text) => (text.startsWith("a") ? a : b).session.prompt({ ...p, text }), {
          concurrency: "unbounded"
        })
        const started = sent.filter((_, i) => results[i]?._tag === "Started")
        assert.strictEqual(started.length, 1, `exactly one prompt starts a turn: ${JSON.stringify(results.map((r) => r._tag))}`)
        yield* Effect.promise(() => fake.waitForRequests(1))
        // the accepted order: the started prompt, then the queue (shared by both hubs) in its order
        const queued = (yield* b.session.queue(p)).map((q) => q.text)
        assert.deepStrictEqual([...queued].sort(), sent.filter((t) => t !== started[0]).sort())
        const accepted = [started[0]!, ...queued]
        release()

        const messages = yield* finished(a, project.id, session.id, 6)
        assert.strictEqual(fake.maxInFlight, 1, "no two model calls overlapped")
        assert.deepStrictEqual(
          fake.requests.map((r) => lastUserText(r.body)),
          accepted
        )
        assert.deepStrictEqual(
          messages.map(line),
          accepted.flatMap((text, i) => [`user:completed:${text}`, `assistant:completed:${i === 0 ? "first answer" : `answer to ${text}`}`])
        )
        assert.deepStrictEqual(yield* a.session.queue(p), [])
        // both hubs read the same history, in the same order
        assert.deepStrictEqual((yield* finished(b, project.id, session.id, 6)).map(line), messages.map(line))
      }),
    120_000
  )

  it.scopedLive(
    "a session whose hub died is marked interrupted by the other hub, which then runs its queued prompt",
    () =>
      Effect.gen(function* () {
        const fake = yield* fakeOpenAI
        fake.script({ hang: true, text: "working" })
        fake.setDefault((body) => ({ text: `answer to ${lastUserText(body)}` }))
        const url = yield* freshDatabase
        const dataDir = tempDir()
        // hub A: a process of its own, killed while its turn runs
        const served = yield* serveKiris(dataDir, { env: { ...fakeModelEnv(fake), KIRIS_DATABASE_URL: url } })
        const hubB = yield* startAgentHub(fake, { dataDir, databaseUrl: Option.some(Redacted.make(url)) })
        const b = yield* hubB.tcpClient()
        const { projectId, sessionId } = yield* Effect.scoped(
          Effect.gen(function* () {
            const a = yield* makeHubClient({ transport: "tcp", host: "127.0.0.1", port: served.tcpPort }, served.adminKey)
            const project = yield* a.project.create({ name: "orphaned", description: "" })
            const session = yield* a.session.create({ projectId: project.id })
            const started = yield* a.session.prompt({ projectId: project.id, sessionId: session.id, text: "one" })
            assert.strictEqual(started._tag, "Started")
            return { projectId: project.id, sessionId: session.id }
          })
        )
        yield* Effect.promise(() => fake.waitForRequests(1))
        const queued = yield* b.session.prompt({ projectId, sessionId, text: "two" })
        assert.strictEqual(queued._tag, "Queued", "hub B queues behind hub A's turn")
        const running = yield* b.session.get({ projectId, sessionId })
        assert.deepStrictEqual(
          running.messages.map((m) => `${m.message.role}:${m.message.status}`),
          ["user:completed", "assistant:running"]
        )

        served.proc.child.kill("SIGKILL")
        yield* served.proc.exited()
        assert.strictEqual(fake.requests.length, 1)
        // A's runner row expires as if its heartbeat had stopped long ago (instead of waiting out its lifetime)
        const dbs = Context.get(hubB.context, ProjectDb)
        const expired = yield* dbs.withProject(projectId)(
          Effect.flatMap(
            SqlClient.SqlClient,
            (sql) => sql`UPDATE session_runs SET expires_at = 0 WHERE session_id = ${sessionId} RETURNING session_id`
          )
        )
        assert.strictEqual(expired.length, 1, "hub A's runner row was there")

        const messages = yield* finished(b, projectId, sessionId, 2)
        assert.deepStrictEqual(
          messages.map((m) => `${m.message.role}:${m.message.status}`),
          ["user:completed", "assistant:interrupted", "user:completed", "assistant:completed"]
        )
        assert.strictEqual(texts(messages[3]!.parts), "answer to two")
        assert.deepStrictEqual(
          fake.requests.map((r) => lastUserText(r.body)),
          ["one", "two"]
        )
        const rows = yield* dbs.withProject(projectId)(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT * FROM session_runs`))
        assert.deepStrictEqual(rows, [], "the session is idle: no hub runs it")
      }),
    120_000
  )

  it.scopedLive(
    "a hub starting leaves another hub's turn running; a cancel sent through it stops the turn where it runs, which then runs the prompt queued behind it",
    () =>
      Effect.gen(function* () {
        const { fake, options } = yield* busyModelAndSharedStore
        const hubA = yield* startAgentHub(fake, options)
        const a = yield* hubA.tcpClient()
        const project = yield* a.project.create({ name: "remote-cancel", description: "" })
        const session = yield* a.session.create({ projectId: project.id })
        const p = { projectId: project.id, sessionId: session.id }
        assert.strictEqual((yield* a.session.prompt({ ...p, text: "one" }))._tag, "Started")
        yield* Effect.promise(() => fake.waitForRequests(1))
        // hub B starts while A's turn runs: its start-up recovery leaves that turn alone
        const hubB = yield* startAgentHub(fake, options)
        const b = yield* hubB.tcpClient()
        const live = yield* b.session.get(p)
        assert.deepStrictEqual(
          [live.session.status, ...live.messages.map((m) => `${m.message.role}:${m.message.status}`)],
          ["running", "user:completed", "assistant:running"]
        )
        assert.strictEqual((yield* b.session.prompt({ ...p, text: "two" }))._tag, "Queued")
        assert.strictEqual((yield* Effect.flip(b.session.prompt({ ...p, text: "no", mode: "reject" })))._tag, "SessionBusy")
        const closed = fake.onClosed()
        assert.isTrue((yield* b.session.cancel(p)).cancelled)
        yield* Effect.promise(() => closed).pipe(Effect.timeout("20 seconds"))
        const messages = yield* finished(b, project.id, session.id, 2)
        assert.deepStrictEqual(
          messages.map((m) => `${m.message.role}:${m.message.status}`),
          ["user:completed", "assistant:cancelled", "user:completed", "assistant:completed"]
        )
        assert.deepStrictEqual(
          fake.requests.map((r) => lastUserText(r.body)),
          ["one", "two"]
        )
      }),
    120_000
  )

  it.scopedLive(
    "a hub shutting down hands its sessions over: another hub runs the prompts queued behind its turn",
    () =>
      Effect.gen(function* () {
        const { fake, options } = yield* busyModelAndSharedStore
        const scopeA = yield* Scope.make()
        const hubA = yield* startAgentHub(fake, options).pipe(Scope.extend(scopeA))
        const a = yield* hubA.tcpClient().pipe(Scope.extend(scopeA))
        const hubB = yield* startAgentHub(fake, options)
        const b = yield* hubB.tcpClient()
        const project = yield* b.project.create({ name: "handover", description: "" })
        const session = yield* b.session.create({ projectId: project.id })
        const p = { projectId: project.id, sessionId: session.id }
        assert.strictEqual((yield* a.session.prompt({ ...p, text: "one" }))._tag, "Started")
        yield* Effect.promise(() => fake.waitForRequests(1))
        assert.strictEqual((yield* b.session.prompt({ ...p, text: "two" }))._tag, "Queued")
        yield* Scope.close(scopeA, Exit.void)
        const messages = yield* finished(b, project.id, session.id, 2)
        assert.deepStrictEqual(
          messages.map((m) => `${m.message.role}:${m.message.status}`),
          ["user:completed", "assistant:interrupted", "user:completed", "assistant:completed"]
        )
        assert.strictEqual(texts(messages[3]!.parts), "answer to two")
      }),
    120_000
  )
})
