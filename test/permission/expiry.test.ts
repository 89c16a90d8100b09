import * as Reactivity from "@effect/experimental/Reactivity"
import { NodeContext } from "@effect/platform-node"
import { SocketServer } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Context, Effect, Fiber, Layer, Option, Scope, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { HubLayer } from "../../src/AppLayer.js"
import { makeHubClient } from "../../src/client/HubClient.js"
import { ServerConfig } from "../../src/config/ServerConfig.js"
import type { DomainEvent, EventBody } from "../../src/domain/Event.js"
import type { MessageId, PermissionRequestId, ProjectId, SessionId } from "../../src/domain/Ids.js"
import { EventBus } from "../../src/events/EventBus.js"
import { DatabaseLive } from "../../src/storage/Database.js"
import { ProjectDb } from "../../src/storage/ProjectDb.js"
import { ToolRegistry } from "../../src/tools/ToolRegistry.js"
import { fakeModelConfig, fakeModelEnv, startAgentHub, watchProject } from "../support/AgentHub.js"
import { type FakeOpenAI, fakeOpenAI } from "../support/FakeOpenAI.js"
import { tempDir } from "../support/Hub.js"
import { serveKiris } from "../support/KirisProcess.js"

type Watch = Effect.Effect.Success<ReturnType<typeof watchProject>>

const find = <T extends EventBody["_tag"]>(
  events: ReadonlyArray<DomainEvent>,
  tag: T,
  pred: (e: Extract<EventBody, { _tag: T }>) => boolean = () => true
) => {
  for (const e of events) {
    if (e.event._tag === tag && pred(e.event as Extract<EventBody, { _tag: T }>)) return e.event as Extract<EventBody, { _tag: T }>
  }
  return undefined
}

const asked = (watch: Watch) => watch.until((events) => find(events, "PermissionAsked"))

/** Waits for the event telling clients that request `id` was settled. */
const settled = (watch: Watch, id: PermissionRequestId) =>
  watch.until((events) => find(events, "PermissionReplied", (e) => e.requestId === id), "10 seconds")

const setup = Effect.gen(function* () {
  const fake = yield* fakeOpenAI
  const hub = yield* startAgentHub(fake)
  const client = yield* hub.tcpClient()
  const workspace = tempDir("kiris-ws-")
  const project = yield* client.project.create({ name: "expiry", description: "", workspace })
  const session = yield* client.session.create({ projectId: project.id })
  const watch = yield* watchProject(client, project.id)
  return { fake, hub, client, project, session, watch, workspace }
})

describe("permission requests never outlive their turn", () => {
  it.scopedLive("cancel while a request is pending: it expires, clients are told, and answering it is a typed error", () =>
    Effect.gen(function* () {
      const { client, fake, project, session, watch, workspace } = yield* setup
      fake.script({ toolCalls: [{ id: "call_w", name: "write", args: { path: "a.txt", content: "x" } }] })
      yield* client.session.prompt({ projectId: project.id, sessionId: session.id, text: "write a.txt" })
      const { request } = yield* asked(watch)
      assert.strictEqual(request.status, "pending")

      assert.isTrue((yield* client.session.cancel({ projectId: project.id, sessionId: session.id })).cancelled)
      const event = yield* settled(watch, request.id)
      assert.deepStrictEqual([event.status, event.sessionId], ["expired", session.id])
      assert.deepStrictEqual(yield* client.permission.pending({ projectId: project.id }), [])

      const late = yield* Effect.flip(client.permission.reply({ projectId: project.id, requestId: request.id, reply: "once" }))
      assert.strictEqual(late._tag, "PermissionExpired")
      if (late._tag === "PermissionExpired") {
        assert.strictEqual(late.requestId, request.id)
        assert.match(late.reason, /turn ended/)
      }
      const unknown = yield* Effect.flip(
        client.permission.reply({ projectId: project.id, requestId: "perm_nope" as PermissionRequestId, reply: "once" })
      )
      assert.strictEqual(unknown._tag, "NotFound")

      const [turn] = yield* watch.turns(session.id)
      assert.strictEqual(turn?.status, "cancelled")
      assert.isFalse(fs.existsSync(path.join(workspace, "a.txt")))
    })
  )

  it.scopedLive("a turn that fails expires the requests it left pending", () =>
    Effect.gen(function* () {
      const { client, fake, hub, project, session, watch, workspace } = yield* setup
      fake.script({ hang: true, text: "working" })
      yield* client.session.prompt({ projectId: project.id, sessionId: session.id, text: "work" })
      const running = yield* watch.until((events) =>
        find(events, "MessageUpdated", (e) => e.message.role === "assistant" && e.message.status === "running")
      )
      yield* watch.until((events) => find(events, "PartDelta", (e) => e.delta.includes("working")))
      // The AI SDK runs a step's tools once the model's stream of that step has ended, so a model
      // cannot fail while one of its tool calls waits; the request is made here by calling the
      // tool on the running turn's message, as one of its tool calls would.
      const caller = yield* client.user.whoami()
      const call = yield* Effect.fork(
        Effect.flatMap(ProjectDb, (dbs) =>
          dbs.withProject(project.id)(
            Effect.flatMap(ToolRegistry, (registry) =>
              registry.execute(
                "write",
                { path: "b.txt", content: "x" },
                {
                  projectId: project.id,
                  sessionId: session.id,
                  messageId: running.message.id,
                  workspace,
                  caller,
                  abortSignal: new AbortController().signal
                }
              )
            )
          )
        ).pipe(Effect.provide(hub.context))
      )
      const { request } = yield* asked(watch)
      assert.strictEqual(request.messageId, running.message.id)

      yield* Effect.promise(() => fake.close()) // the model's connection breaks: the turn fails
      const [turn] = yield* watch.turns(session.id)
      assert.strictEqual(turn?.status, "error")
      const event = yield* settled(watch, request.id)
      assert.strictEqual(event.status, "expired")
      const out = yield* Fiber.join(call)
      assert.isFalse(out.ok)
      if (!out.ok) assert.match(out.error, /turn ended \(error\)/)
      const late = yield* Effect.flip(client.permission.reply({ projectId: project.id, requestId: request.id, reply: "once" }))
      assert.strictEqual(late._tag, "PermissionExpired")
      assert.isFalse(fs.existsSync(path.join(workspace, "b.txt")))
    })
  )
})

/**
 * A hub on `dataDir` whose EventBus gets a subscriber before the rest of the hub is built, so the
 * events published during start-up are seen (a client can only subscribe once the hub listens).
 */
const startWatchedHub = (fake: FakeOpenAI, dataDir: string) =>
  Effect.gen(function* () {
    const scope = yield* Scope.Scope
    const memoMap = yield* Layer.makeMemoMap
    const config = ServerConfig.layerWith({ port: 0, tcpPort: 0, workspaceRoots: [os.tmpdir()], dataDir })
    // The bus logs events in project databases: it brings the hub's ProjectDb (and its Reactivity) with it.
    const early = yield* Layer.buildWithMemoMap(
      EventBus.Default.pipe(Layer.provide(DatabaseLive), Layer.provide(config), Layer.provide(Reactivity.layer)),
      memoMap,
      scope
    )
    const items = yield* Context.get(early, EventBus).subscribe(() => true)
    const context = yield* Layer.buildWithMemoMap(HubLayer.pipe(Layer.provide(config), Layer.provide(NodeContext.layer)), memoMap, scope)
    assert.strictEqual(Context.get(context, EventBus), Context.get(early, EventBus), "the hub uses the bus built first")
    const tcp = Context.get(context, SocketServer.SocketServer).address as SocketServer.TcpAddress
    const key = fs.readFileSync(path.join(dataDir, "admin.key"), "utf8").trim()
    const client = yield* makeHubClient({ transport: "tcp", host: "127.0.0.1", port: tcp.port }, key)
    /** The start-up events, up to the first one matching `last`. */
    const startupEvents = (last: (e: EventBody) => boolean) =>
      items.pipe(
        Stream.filterMap((item) => (item._tag === "Event" ? Option.some(item.event.event) : Option.none())),
        Stream.takeUntil(last),
        Stream.runCollect,
        Effect.map(Chunk.toReadonlyArray),
        Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("start-up published no matching event") })
      )
    return { client, startupEvents }
  }).pipe(Effect.withConfigProvider(fakeModelConfig(fake)))

describe("hub start-up after a crash", () => {
  it.scopedLive("the crashed turn is published interrupted, its pending request expires, and answering it is a typed error", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const dataDir = tempDir()
      fake.script({ text: "writing", toolCalls: [{ id: "call_w", name: "write", args: { path: "c.txt", content: "x" } }] })
      const { proc, adminKey: key, tcpPort } = yield* serveKiris(dataDir, { env: fakeModelEnv(fake) })
      const before = yield* Effect.scoped(
        Effect.gen(function* () {
          const client = yield* makeHubClient({ transport: "tcp", host: "127.0.0.1", port: tcpPort }, key)
          const project = yield* client.project.create({ name: "crash", description: "" })
          const session = yield* client.session.create({ projectId: project.id })
          const watch = yield* watchProject(client, project.id)
          yield* client.session.prompt({ projectId: project.id, sessionId: session.id, text: "write c.txt" })
          const { request } = yield* asked(watch)
          return { projectId: project.id as ProjectId, sessionId: session.id as SessionId, request }
        })
      )
      proc.child.kill("SIGKILL")
      yield* proc.exited()

      const { client, startupEvents } = yield* startWatchedHub(fake, dataDir)
      const events = yield* startupEvents((e) => e._tag === "SessionStatus" && e.sessionId === before.sessionId)
      const messageId: MessageId = before.request.messageId
      const interrupted = events.flatMap((e) => (e._tag === "MessageUpdated" && e.message.id === messageId ? [e.message.status] : []))
      assert.deepStrictEqual(interrupted, ["interrupted"])
      const tool = events.flatMap((e) => (e._tag === "PartUpdated" && e.part.data._tag === "tool" ? [e.part.data] : []))
      assert.deepStrictEqual(
        tool.map((t) => [t.callId, t.status]),
        [["call_w", "error"]]
      )
      const expired = events.flatMap((e) => (e._tag === "PermissionReplied" ? [[e.requestId, e.status]] : []))
      assert.deepStrictEqual(expired, [[before.request.id, "expired"]])
      assert.deepStrictEqual(events.at(-1), { _tag: "SessionStatus", sessionId: before.sessionId, status: "idle" })

      const watch = yield* watchProject(client, before.projectId)
      const history = yield* client.session.get({ projectId: before.projectId, sessionId: before.sessionId })
      assert.strictEqual(history.session.status, "idle")
      assert.deepStrictEqual(
        history.messages.map((m) => [m.message.id === messageId, m.message.status]),
        [
          [false, "completed"],
          [true, "interrupted"]
        ]
      )
      assert.deepStrictEqual(yield* client.permission.pending({ projectId: before.projectId }), [])
      const late = yield* Effect.flip(client.permission.reply({ projectId: before.projectId, requestId: before.request.id, reply: "once" }))
      assert.strictEqual(late._tag, "PermissionExpired")
      if (late._tag === "PermissionExpired") assert.match(late.reason, /hub restarted/)
      assert.isUndefined(find(yield* watch.events, "PermissionAsked"))
    })
  )
})
