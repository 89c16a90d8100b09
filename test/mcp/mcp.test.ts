import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { type CallToolResult, ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js"
import { Deferred, Effect } from "effect"
import type { HubRpcClient } from "../../src/client/HubClient.js"
import type { ProjectId } from "../../src/domain/Ids.js"
import { startAgentHub } from "../support/AgentHub.js"
import { echoLastUser, fakeOpenAI } from "../support/FakeOpenAI.js"
import { startHub, tempDir, type TestHub } from "../support/Hub.js"
import { kirisBin, runKiris } from "../support/KirisProcess.js"
import { type PackageRecorder, packageRecorder } from "../support/LoadedPackages.js"
import { startWorker, workerKey } from "../worker/swarm-support.js"

/**
 * Kiris as an MCP server, driven by the official MCP SDK's client: `kiris mcp` over stdio (the real
 * CLI process) and the hub's `/mcp` over Streamable HTTP, with real workers running the tasks.
 */

const cleanEnv = () => {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("KIRIS_")) env[k] = v
  return env
}

const connect = (transport: StdioClientTransport | StreamableHTTPClientTransport) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Client({ name: "kiris-test", version: "1.0.0" })
      await client.connect(transport)
      return client
    }),
    (client) => Effect.promise(() => client.close().catch(() => undefined))
  )

const stdioClient = (hub: TestHub, token: string, recorder?: PackageRecorder) =>
  connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [kirisBin, "mcp", "--hub", `127.0.0.1:${hub.tcpPort}`, "--token", token, "--project", "mcp"],
      cwd: tempDir("kiris-mcp-cwd-"),
      env: recorder === undefined ? cleanEnv() : { ...cleanEnv(), NODE_OPTIONS: recorder.nodeOptions },
      stderr: "pipe"
    })
  )

const httpClient = (hub: TestHub, token: string) =>
  connect(new StreamableHTTPClientTransport(new URL(`${hub.httpUrl}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }))

const call = (client: Client, name: string, args: Record<string, unknown>, onprogress?: (message: string) => void) =>
  Effect.promise(
    () =>
      client.callTool({ name, arguments: args }, undefined, {
        ...(onprogress === undefined ? {} : { onprogress: (p) => onprogress(p.message ?? "") }),
        timeout: 120_000
      }) as Promise<CallToolResult>
  )

const structured = <A>(result: CallToolResult): A => {
  assert.notStrictEqual(result.isError, true, `tool failed: ${JSON.stringify(result.content)}`)
  return result.structuredContent as A
}

interface TaskJson {
  readonly id: string
  readonly status: string
  readonly result: unknown
  readonly error: string | null
}

/** A hub with project `mcp`, a `--trust-shell` worker, and a viewer of the project with a read+write key. */
const world = Effect.gen(function* () {
  const hub = yield* startHub()
  const admin: HubRpcClient = yield* hub.tcpClient()
  const project = yield* admin.project.create({ name: "mcp" })
  const viewer = yield* admin.user.create({ name: "viewer", password: "viewer-password", isAdmin: false })
  yield* admin.project.addMember({ projectId: project.id as ProjectId, user: viewer.id, role: "viewer" })
  const viewerKey = (yield* admin.key.create({ name: "viewer key", scopes: ["read", "write"], userId: viewer.id })).key
  const workerToken = yield* workerKey(admin)
  yield* startWorker({ name: "mcp-worker", tcpPort: hub.tcpPort, key: workerToken, args: ["--trust-shell"] })
  return { hub, admin, projectId: project.id, viewerKey, workerToken }
})

const SDK = "@modelcontextprotocol/sdk"

describe("MCP server", () => {
  it.effect("kiris --help does not load the MCP SDK (the command imports it when it runs)", () =>
    Effect.gen(function* () {
      const recorder = packageRecorder()
      const help = yield* runKiris(["--help"], { cwd: tempDir(), env: { NODE_OPTIONS: recorder.nodeOptions } })
      assert.strictEqual(help.code, 0, help.stderr)
      assert.include(help.stdout, "mcp")
      // the recorder saw the program; the SDK is bundled, so loading it would have shown
      assert.include(recorder.packages(), "@effect/cli")
      assert.notInclude(recorder.packages(), SDK)
    })
  )

  it.scopedLive(
    "kiris mcp over stdio: tools, a waited task run by a worker, fan-out with a reducer, cancel, a resource, a refused call",
    () =>
      Effect.gen(function* () {
        const { hub, viewerKey } = yield* world
        const recorder = packageRecorder()
        const client = yield* stdioClient(hub, hub.adminKey, recorder)
        assert.strictEqual(client.getServerVersion()?.name, "kiris")
        // what `kiris --help` must not load, `kiris mcp` does (the control of the test above)
        assert.include(recorder.packages(), SDK)

        const { tools } = yield* Effect.promise(() => client.listTools())
        const names = tools.map((t) => t.name).sort()
        assert.deepStrictEqual(names, [
          "answer",
          "cancel_task",
          "create_session",
          "fan_out",
          "get_session",
          "get_task",
          "list_inbox",
          "list_tasks",
          "list_workers",
          "retry_task",
          "send_prompt",
          "submit_task"
        ])
        for (const t of tools) {
          assert.strictEqual(t.inputSchema.type, "object", t.name)
          assert.strictEqual(t.outputSchema?.type, "object", t.name)
          assert.isBoolean(t.annotations?.readOnlyHint, t.name)
          assert.isBoolean(t.annotations?.destructiveHint, t.name)
        }
        const byName = new Map(tools.map((t) => [t.name, t]))
        assert.strictEqual(byName.get("get_task")!.annotations!.readOnlyHint, true)
        assert.strictEqual(byName.get("cancel_task")!.annotations!.destructiveHint, true)
        assert.deepStrictEqual((byName.get("submit_task")!.inputSchema as { required?: Array<string> }).required, ["kind"])

        // submit_task with wait: a real shell task on the worker, with progress reported meanwhile.
        const progress: Array<string> = []
        const submitted = structured<{ task: TaskJson }>(
          yield* call(client, "submit_task", { kind: "shell", command: "sleep 1; echo hello-from-mcp", wait: true }, (m) => progress.push(m))
        )
        assert.strictEqual(submitted.task.status, "done")
        assert.include(JSON.stringify(submitted.task.result), "hello-from-mcp")
        assert.isAbove(progress.length, 0, "no progress notification while waiting")

        // fan_out: a template over items and a reducer reading the map results.
        const fanned = structured<{ mapTasks: Array<TaskJson>; reduceTask: TaskJson }>(
          yield* call(client, "fan_out", {
            kind: "shell",
            items: ["alpha", "beta", "gamma"],
            template: "echo item-{item}",
            reducer: { command: 'cat "$KIRIS_DEPENDENCIES_FILE"' },
            policy: "partial",
            wait: true
          })
        )
        assert.strictEqual(fanned.mapTasks.length, 3)
        assert.deepStrictEqual(
          fanned.mapTasks.map((t) => t.status),
          ["done", "done", "done"]
        )
        assert.strictEqual(fanned.reduceTask.status, "done")
        const reduced = JSON.stringify(fanned.reduceTask.result)
        for (const item of ["item-alpha", "item-beta", "item-gamma"]) assert.include(reduced, item)

        // cancel_task: a human task waits for an answer until cancelled.
        const human = structured<{ task: TaskJson }>(yield* call(client, "submit_task", { kind: "human", prompt: "approve the release?" }))
        assert.strictEqual(human.task.status, "input_required")
        const cancelled = structured<{ task: TaskJson }>(yield* call(client, "cancel_task", { taskId: human.task.id }))
        assert.strictEqual(cancelled.task.status, "cancelled")

        // A resource read.
        const read = yield* Effect.promise(() => client.readResource({ uri: `kiris://tasks/${submitted.task.id}` }))
        const content = read.contents[0] as { text: string; mimeType: string }
        assert.strictEqual(content.mimeType, "application/json")
        assert.strictEqual((JSON.parse(content.text) as TaskJson).id, submitted.task.id)

        // Bad input is a tool error, not a crash.
        const bad = yield* call(client, "submit_task", { kind: "shell" })
        assert.strictEqual(bad.isError, true)
        assert.match((bad.content[0] as { text: string }).text, /InvalidInput: shell tasks need a command/)

        // A viewer's key may look but not submit: the RPC's own check refuses it.
        const viewer = yield* stdioClient(hub, viewerKey)
        const listed = structured<{ tasks: Array<TaskJson> }>(yield* call(viewer, "list_tasks", { project: "mcp" }))
        assert.isAbove(listed.tasks.length, 0)
        const refused = yield* call(viewer, "submit_task", { kind: "noop" })
        assert.strictEqual(refused.isError, true)
        assert.match((refused.content[0] as { text: string }).text, /^Forbidden: needs role member/)
      }),
    180_000
  )

  it.scopedLive(
    "/mcp over Streamable HTTP: sessions, a waited task, resource updates from events, and the endpoint's refusals",
    () =>
      Effect.gen(function* () {
        const { hub, viewerKey, workerToken } = yield* world
        const client = yield* httpClient(hub, hub.adminKey)
        const { tools } = yield* Effect.promise(() => client.listTools())
        assert.strictEqual(tools.length, 12)

        const done = structured<{ task: TaskJson }>(
          yield* call(client, "submit_task", { project: "mcp", kind: "noop", payload: { n: 7 }, wait: true })
        )
        assert.strictEqual(done.task.status, "done")
        assert.deepStrictEqual((done.task.result as { echo: unknown }).echo, { n: 7 })

        // Subscribing to a task resource: its cancellation arrives as notifications/resources/updated.
        const human = structured<{ task: TaskJson }>(yield* call(client, "submit_task", { project: "mcp", kind: "human", prompt: "ok?" }))
        const uri = `kiris://tasks/${human.task.id}`
        const updated = yield* Deferred.make<string>()
        client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
          Deferred.unsafeDone(updated, Effect.succeed(n.params.uri))
        })
        yield* Effect.promise(() => client.subscribeResource({ uri }))
        structured(yield* call(client, "cancel_task", { taskId: human.task.id }))
        assert.strictEqual(yield* Deferred.await(updated).pipe(Effect.timeout("30 seconds")), uri)
        // The inbox: a human task waits there until answered.
        const ask = structured<{ task: TaskJson }>(yield* call(client, "submit_task", { project: "mcp", kind: "human", prompt: "ship it?" }))
        const inbox = structured<{ items: Array<{ id: string; kind: string }> }>(yield* call(client, "list_inbox", { project: "mcp" }))
        assert.deepStrictEqual(
          inbox.items.map((i) => [i.id, i.kind]),
          [[ask.task.id, "human_task"]]
        )
        structured(yield* call(client, "answer", { id: ask.task.id, answer: "approve", note: "shipped" }))
        const approved = structured<{ task: TaskJson }>(yield* call(client, "get_task", { taskId: ask.task.id }))
        assert.strictEqual(approved.task.status, "done")

        const workers = yield* Effect.promise(() => client.readResource({ uri: "kiris://workers" }))
        assert.include((workers.contents[0] as { text: string }).text, "mcp-worker")

        // The viewer over HTTP: refused by the RPC, like over stdio.
        const viewer = yield* httpClient(hub, viewerKey)
        const refused = yield* call(viewer, "fan_out", { project: "mcp", kind: "noop", items: [{}] })
        assert.strictEqual(refused.isError, true)
        assert.match((refused.content[0] as { text: string }).text, /^Forbidden/)

        const initialize = {
          jsonrpc: "2.0",
          id: 1,
          method: "initialize",
          params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } }
        }
        const post = (body: unknown, headers: Record<string, string>) =>
          Effect.promise(async () => {
            const res = await fetch(`${hub.httpUrl}/mcp`, {
              method: "POST",
              headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
              body: JSON.stringify(body)
            })
            return { status: res.status, text: await res.text(), sessionId: res.headers.get("mcp-session-id") }
          })
        const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

        const anonymous = yield* post(initialize, {})
        assert.strictEqual(anonymous.status, 401)
        assert.strictEqual((JSON.parse(anonymous.text) as { _tag: string })._tag, "Unauthorized")
        const worker = yield* post(initialize, bearer(workerToken))
        assert.strictEqual(worker.status, 403)
        const foreign = yield* post(initialize, { ...bearer(hub.adminKey), origin: "https://evil.example" })
        assert.strictEqual(foreign.status, 403)
        assert.match(foreign.text, /origin https:\/\/evil.example is not allowed/)
        const local = yield* post(initialize, { ...bearer(hub.adminKey), origin: "http://localhost:5173" })
        assert.strictEqual(local.status, 200)
        assert.isString(local.sessionId)
        const batch = yield* post([initialize, { jsonrpc: "2.0", id: 2, method: "tools/list" }], bearer(hub.adminKey))
        assert.strictEqual(batch.status, 400)
        assert.strictEqual((JSON.parse(batch.text) as { error: { code: number; message: string } }).error.code, -32600)
        assert.match(batch.text, /batches are not supported/)
        // A session answers only the token that created it.
        const stolen = yield* post({ jsonrpc: "2.0", id: 3, method: "tools/list" }, { ...bearer(viewerKey), "mcp-session-id": local.sessionId! })
        assert.strictEqual(stolen.status, 404)
        const noSession = yield* post({ jsonrpc: "2.0", id: 4, method: "tools/list" }, bearer(hub.adminKey))
        assert.strictEqual(noSession.status, 400)
      }),
    180_000
  )

  it.scopedLive(
    "agent sessions over /mcp: create_session, send_prompt waits for the answer with progress, get_session and the transcript resource",
    () =>
      Effect.gen(function* () {
        const fake = yield* fakeOpenAI
        fake.setDefault(echoLastUser)
        const hub = yield* startAgentHub(fake)
        const admin = yield* hub.tcpClient()
        yield* admin.project.create({ name: "agents" })
        const client = yield* httpClient(hub, hub.adminKey)
        const created = structured<{ session: { id: string } }>(yield* call(client, "create_session", { project: "agents", title: "from mcp" }))
        const progress: Array<string> = []
        const answered = structured<{ status: string; text: string }>(
          yield* call(client, "send_prompt", { project: "agents", sessionId: created.session.id, text: "hi there" }, (m) => progress.push(m))
        )
        assert.strictEqual(answered.status, "completed")
        assert.strictEqual(answered.text, "echo: hi there")
        assert.isAbove(progress.length, 0, "no progress notification during the turn")
        const second = structured<{ text: string }>(
          yield* call(client, "send_prompt", { project: "agents", sessionId: created.session.id, text: "again" })
        )
        assert.strictEqual(second.text, "echo: again")
        const history = structured<{ messages: Array<unknown> }>(
          yield* call(client, "get_session", { project: "agents", sessionId: created.session.id })
        )
        assert.strictEqual(history.messages.length, 4)
        const transcript = yield* Effect.promise(() => client.readResource({ uri: `kiris://sessions/${created.session.id}/transcript` }))
        const text = (transcript.contents[0] as { text: string }).text
        assert.include(text, "hi there")
        assert.include(text, "echo: again")
      }),
    120_000
  )

  it.scopedLive("/mcp keeps at most mcpMaxSessionsPerCaller sessions per user: a new one closes the least recently used idle one", () =>
    Effect.gen(function* () {
      const hub = yield* startHub({ mcpMaxSessionsPerCaller: 1 })
      const initialize = (n: number) => ({
        jsonrpc: "2.0",
        id: n,
        method: "initialize",
        params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: `raw-${n}`, version: "1" } }
      })
      const post = (body: unknown, sessionId?: string) =>
        Effect.promise(async () => {
          const res = await fetch(`${hub.httpUrl}/mcp`, {
            method: "POST",
            headers: {
              authorization: `Bearer ${hub.adminKey}`,
              "content-type": "application/json",
              accept: "application/json, text/event-stream",
              "mcp-protocol-version": "2025-06-18",
              ...(sessionId === undefined ? {} : { "mcp-session-id": sessionId })
            },
            body: JSON.stringify(body)
          })
          return { status: res.status, text: await res.text(), sessionId: res.headers.get("mcp-session-id") }
        })
      const first = yield* post(initialize(1))
      assert.strictEqual(first.status, 200)
      const listed = yield* post({ jsonrpc: "2.0", id: 2, method: "tools/list" }, first.sessionId!)
      assert.strictEqual(listed.status, 200)
      assert.include(listed.text, "submit_task")
      const second = yield* post(initialize(3))
      assert.strictEqual(second.status, 200)
      assert.notStrictEqual(second.sessionId, first.sessionId)
      assert.strictEqual((yield* post({ jsonrpc: "2.0", id: 4, method: "tools/list" }, first.sessionId!)).status, 404)
      assert.strictEqual((yield* post({ jsonrpc: "2.0", id: 5, method: "tools/list" }, second.sessionId!)).status, 200)
    })
  )
})
