import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Tracer } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { makeHubClient, parseHub } from "../../src/client/HubClient.js"
import { fromTraceparent, otlpEndpoint, toTraceparent } from "../../src/runtime/Tracing.js"
import { fakeOpenAI } from "../support/FakeOpenAI.js"
import { tempDir } from "../support/Hub.js"
import { runKiris, serveKiris } from "../support/KirisProcess.js"
import { type PackageRecorder, packageRecorder } from "../support/LoadedPackages.js"
import { newProject, startWorker, waitAll, workerKey } from "../worker/swarm-support.js"

/**
 * OpenTelemetry tracing of real `kiris serve` and `kiris worker` processes, exported over OTLP/HTTP
 * (JSON) to a receiver in this process.
 */

interface ReceivedSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string
  readonly name: string
  readonly attributes: Readonly<Record<string, unknown>>
  readonly resource: Readonly<Record<string, unknown>>
}

type OtlpValue = { readonly stringValue?: string; readonly intValue?: string | number; readonly boolValue?: boolean; readonly doubleValue?: number }
type OtlpAttribute = { readonly key: string; readonly value: OtlpValue }
interface OtlpTraces {
  readonly resourceSpans?: ReadonlyArray<{
    readonly resource?: { readonly attributes?: ReadonlyArray<OtlpAttribute> }
    readonly scopeSpans?: ReadonlyArray<{
      readonly spans?: ReadonlyArray<{
        readonly traceId: string
        readonly spanId: string
        readonly parentSpanId?: string
        readonly name: string
        readonly attributes?: ReadonlyArray<OtlpAttribute>
      }>
    }>
  }>
}

const valueOf = (v: OtlpValue): unknown => v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.boolValue ?? v.doubleValue))
const attributesOf = (list: ReadonlyArray<OtlpAttribute> | undefined) => Object.fromEntries((list ?? []).map((a) => [a.key, valueOf(a.value)]))

/** An OTLP/HTTP trace receiver on a free port: `POST /v1/traces` with a JSON body. */
const otlpReceiver = Effect.acquireRelease(
  Effect.async<{ readonly url: string; readonly spans: Array<ReceivedSpan>; readonly requests: () => number; readonly server: http.Server }>(
    (resume) => {
      const spans: Array<ReceivedSpan> = []
      let requests = 0
      const server = http.createServer((req, res) => {
        let body = ""
        req.setEncoding("utf8").on("data", (d: string) => (body += d))
        req.on("end", () => {
          requests++
          if (req.method !== "POST" || req.url !== "/v1/traces") {
            res.writeHead(404).end()
            return
          }
          const traces = JSON.parse(body) as OtlpTraces
          for (const rs of traces.resourceSpans ?? []) {
            const resource = attributesOf(rs.resource?.attributes)
            for (const ss of rs.scopeSpans ?? []) {
              for (const s of ss.spans ?? []) {
                spans.push({
                  traceId: s.traceId,
                  spanId: s.spanId,
                  parentSpanId: s.parentSpanId ?? "",
                  name: s.name,
                  attributes: attributesOf(s.attributes),
                  resource
                })
              }
            }
          }
          res.writeHead(200, { "content-type": "application/json" }).end("{}")
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as { port: number }).port
        resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, spans, requests: () => requests, server }))
      })
    }
  ),
  (r) =>
    Effect.async<void>((resume) => {
      r.server.closeAllConnections()
      r.server.close(() => resume(Effect.void))
    })
)

/** Polls the received spans until `find` returns something, or fails after a deadline. */
const awaitSpans = <A>(
  spans: ReadonlyArray<ReceivedSpan>,
  what: string,
  find: (spans: ReadonlyArray<ReceivedSpan>) => A | undefined,
  timeoutMs = 30_000
) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = find(spans)
      if (found !== undefined) return found
      if (Date.now() > deadline) {
        return yield* Effect.dieMessage(
          `no ${what} within ${timeoutMs} ms; received: ${spans.map((s) => `${s.name}@${s.traceId.slice(0, 8)}`).join(", ")}`
        )
      }
      yield* Effect.sleep("50 millis")
    }
  })

/** The OpenTelemetry packages (ours and the SDK's) among those a recorder saw loaded. */
const otelPackages = (recorder: PackageRecorder) => recorder.packages().filter((p) => /^@(effect\/)?opentelemetry(\/|$)/.test(p))

const otelEnv = (receiverUrl: string) => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl,
  OTEL_BSP_SCHEDULE_DELAY: "100",
  OTEL_SERVICE_NAME: "kiris-test"
})

describe("OpenTelemetry tracing", () => {
  it.scopedLive(
    "a task's trace runs from task.enqueue on the hub through its lease to its run in the worker process",
    () =>
      Effect.gen(function* () {
        const receiver = yield* otlpReceiver
        const imports = packageRecorder()
        const env = { ...otelEnv(receiver.url), NODE_OPTIONS: imports.nodeOptions }
        const hub = yield* serveKiris(path.join(tempDir(), "data"), { env })
        const admin = yield* makeHubClient(parseHub(`127.0.0.1:${hub.tcpPort}`), hub.adminKey)
        const key = yield* workerKey(admin)
        const projectId = yield* newProject(admin)
        const worker = yield* startWorker({ name: "traced", tcpPort: hub.tcpPort, key, env })

        const task = yield* admin.task.enqueue({ projectId, kind: "noop", payload: { n: 1 } })
        const [done] = yield* waitAll(admin, [task.id])
        assert.strictEqual(done!.status, "done")

        const run = yield* awaitSpans(receiver.spans, "task.run span", (spans) =>
          spans.find((s) => s.name === "task.run" && s.attributes["kiris.task_id"] === task.id)
        )
        const { enqueue, lease } = yield* awaitSpans(receiver.spans, "task.enqueue and task.lease spans in the run's trace", (spans) => {
          const inTrace = spans.filter((s) => s.traceId === run.traceId)
          const enqueue = inTrace.find((s) => s.name === "task.enqueue")
          const lease = inTrace.find((s) => s.name === "task.lease" && s.attributes["kiris.task_id"] === task.id)
          return enqueue && lease ? { enqueue, lease } : undefined
        })
        // one trace: enqueue (hub) → lease (hub) → run (worker)
        assert.strictEqual(lease.parentSpanId, enqueue.spanId)
        assert.strictEqual(run.parentSpanId, lease.spanId)
        assert.strictEqual(lease.attributes["kiris.worker_id"], worker.workerId)
        assert.strictEqual(enqueue.attributes["rpc.transport"], "tcp")
        assert.strictEqual(enqueue.attributes["kiris.project_id"], projectId)
        assert.strictEqual(enqueue.attributes["rpc.outcome"], "ok")
        assert.strictEqual(enqueue.parentSpanId, "")
        // the run span came from the worker process, the others from the hub
        assert.strictEqual(run.resource["service.name"], "kiris-test")
        assert.strictEqual(run.resource["kiris.role"], "worker")
        assert.strictEqual(enqueue.resource["kiris.role"], "serve")
        assert.strictEqual(run.resource["process.pid"], worker.proc.child.pid)
        assert.strictEqual(enqueue.resource["process.pid"], hub.proc.child.pid)
        // the import log sees the SDK when tracing is on (the control for the test below)
        assert.isTrue(otelPackages(imports).includes("@opentelemetry/sdk-trace-base"), imports.packages().join("\n"))
      }),
    120_000
  )

  it.scopedLive(
    "an agent turn that calls a tool gives one trace with the turn, each model call and the tool call",
    () =>
      Effect.gen(function* () {
        const receiver = yield* otlpReceiver
        const fake = yield* fakeOpenAI
        const env = {
          ...otelEnv(receiver.url),
          KIRIS_MODEL: "openai-compatible:fake",
          KIRIS_OPENAI_COMPATIBLE_BASE_URL: fake.baseURL,
          KIRIS_LLM_MAX_RETRIES: "0",
          KIRIS_WORKSPACE_ROOTS: os.tmpdir()
        }
        const hub = yield* serveKiris(path.join(tempDir(), "data"), { env })
        const admin = yield* makeHubClient(parseHub(`127.0.0.1:${hub.tcpPort}`), hub.adminKey)
        const workspace = tempDir("kiris-ws-")
        fs.writeFileSync(path.join(workspace, "hello.txt"), "hello")
        yield* admin.project.create({ name: "work", description: "", workspace })
        fake.script({ toolCalls: [{ id: "call_list", name: "list", args: { path: "." } }] }, { text: "there is hello.txt" })

        const chat = yield* runKiris(
          ["chat", "--hub-http", hub.httpUrl, "--token", hub.adminKey, "--project", "work", "--yes", "-p", "what is here?"],
          {
            cwd: tempDir("kiris-cwd-")
          }
        )
        assert.strictEqual(chat.code, 0, chat.stderr)
        assert.strictEqual(chat.stdout, "there is hello.txt\n")

        const { turn, calls, tool } = yield* awaitSpans(receiver.spans, "a turn with two model calls and a tool call", (spans) => {
          const tool = spans.find((s) => s.name === "ToolRegistry.call" && s.attributes["tool"] === "list")
          if (tool === undefined) return undefined
          const inTrace = spans.filter((s) => s.traceId === tool.traceId)
          const turn = inTrace.find((s) => s.name === "TurnRunner.run")
          const calls = inTrace.filter((s) => s.name === "model.call")
          return turn && calls.length === 2 ? { turn, calls, tool } : undefined
        })
        for (const call of calls) assert.strictEqual(call.parentSpanId, turn.spanId)
        assert.deepStrictEqual(calls.map((c) => c.attributes["step"]).sort(), [1, 2])
        assert.deepStrictEqual(calls.map((c) => c.attributes["finishReason"]).sort(), ["stop", "tool-calls"])
        assert.strictEqual(tool.attributes["toolCallId"], "call_list")
        assert.strictEqual(tool.attributes["tool.ok"], true)
        assert.strictEqual(turn.resource["kiris.role"], "serve")
        // `kiris chat` talks WebSocket: each of its calls is a root span of its own trace
        const prompt = receiver.spans.find((s) => s.name === "session.prompt")
        assert.isDefined(prompt, receiver.spans.map((s) => s.name).join(", "))
        assert.strictEqual(prompt!.attributes["rpc.transport"], "websocket")
        assert.strictEqual(prompt!.parentSpanId, "")
      }),
    120_000
  )

  it.scopedLive(
    "with no OTLP endpoint set, the hub and the worker never load the OpenTelemetry packages",
    () =>
      Effect.gen(function* () {
        const imports = packageRecorder()
        // OTEL_SERVICE_NAME alone does not switch tracing on
        const env = { NODE_OPTIONS: imports.nodeOptions, OTEL_SERVICE_NAME: "kiris-test", OTEL_BSP_SCHEDULE_DELAY: "100" }
        const hub = yield* serveKiris(path.join(tempDir(), "data"), { env })
        const admin = yield* makeHubClient(parseHub(`127.0.0.1:${hub.tcpPort}`), hub.adminKey)
        const key = yield* workerKey(admin)
        const projectId = yield* newProject(admin)
        yield* startWorker({ name: "untraced", tcpPort: hub.tcpPort, key, env })
        const task = yield* admin.task.enqueue({ projectId, kind: "noop", payload: { n: 1 } })
        const [done] = yield* waitAll(admin, [task.id])
        assert.strictEqual(done!.status, "done")

        assert.isAbove(imports.modules(), 0, "the recorder saw no module")
        assert.deepStrictEqual(otelPackages(imports), [])
      }),
    120_000
  )
})

describe("trace context", () => {
  it("a traceparent round-trips, and a malformed one is ignored", () => {
    const span = Tracer.externalSpan({ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", sampled: true })
    const value = toTraceparent(span)
    assert.strictEqual(value, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    const parsed = Option.getOrThrow(fromTraceparent(value))
    assert.deepStrictEqual([parsed.traceId, parsed.spanId, parsed.sampled], [span.traceId, span.spanId, true])
    assert.isFalse(Option.getOrThrow(fromTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")).sampled)
    for (const bad of [
      undefined,
      null,
      "",
      "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      "00-XYZ-b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71-01"
    ]) {
      assert.isTrue(Option.isNone(fromTraceparent(bad)), String(bad))
    }
  })

  it("the traces endpoint wins over the base endpoint; blank values and OTEL_SDK_DISABLED leave tracing off", () => {
    assert.strictEqual(
      otlpEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://b:4318/v1/traces" }),
      "http://b:4318/v1/traces"
    )
    assert.strictEqual(otlpEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318" }), "http://a:4318")
    assert.isUndefined(otlpEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: " ", OTEL_SERVICE_NAME: "kiris" }))
    assert.isUndefined(otlpEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4318", OTEL_SDK_DISABLED: "true" }))
  })
})
