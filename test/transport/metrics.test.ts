import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric, MetricBoundaries } from "effect"
import type { TaskId } from "../../src/domain/Ids.js"
import { ModelPrice } from "../../src/llm/Prices.js"
import { declared } from "../../src/transport/metrics/KirisMetrics.js"
import { render } from "../../src/transport/metrics/PrometheusText.js"
import { startAgentHub, watchProject } from "../support/AgentHub.js"
import { eventually, startQueue, task, worker } from "../queue/support.js"
import { fakeOpenAI } from "../support/FakeOpenAI.js"
import { tempDir } from "../support/Hub.js"
import { request } from "../support/Http.js"
import { spawnKiris } from "../support/KirisProcess.js"
import { startWorker, swarmHub, waitAll } from "../worker/swarm-support.js"

/** `/metrics` in the Prometheus text format, and `--log-format json`. */

interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** Parses the text exposition format strictly enough to catch a malformed line. */
const parse = (text: string) => {
  const types = new Map<string, string>()
  const helps = new Set<string>()
  const samples: Array<Sample> = []
  for (const line of text.split("\n")) {
    if (line === "") continue
    const help = line.match(/^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/)
    if (help) {
      helps.add(help[1]!)
      continue
    }
    const type = line.match(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/)
    if (type) {
      assert.isFalse(types.has(type[1]!), `one TYPE line per metric: ${line}`)
      types.set(type[1]!, type[2]!)
      continue
    }
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/)
    assert.isNotNull(m, `malformed line: ${line}`)
    const labels: Record<string, string> = {}
    const body = m![2] ?? ""
    const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy
    let consumed = 0
    for (let l = labelRe.exec(body); l !== null; l = labelRe.exec(body)) {
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c))
      consumed = labelRe.lastIndex
    }
    assert.strictEqual(consumed, body.length, `malformed labels: ${line}`)
    const value = m![3] === "+Inf" ? Infinity : Number(m![3])
    assert.isFalse(Number.isNaN(value), `malformed value: ${line}`)
    const family = m![1]!.replace(/_(bucket|sum|count)$/, "")
    assert.isTrue(types.has(m![1]!) || types.get(family) === "histogram", `sample before its TYPE line: ${line}`)
    samples.push({ name: m![1]!, labels, value })
  }
  for (const name of types.keys()) assert.isTrue(helps.has(name), `HELP for ${name}`)
  const find = (name: string, labels: Record<string, string> = {}) =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  const value = (name: string, labels: Record<string, string> = {}) => {
    const found = find(name, labels)
    assert.strictEqual(found.length, 1, `one sample ${name} ${JSON.stringify(labels)}; found ${JSON.stringify(found)}`)
    return found[0]!.value
  }
  /** The sum of the matching samples, 0 when there is none yet. */
  const total = (name: string, labels: Record<string, string> = {}) => find(name, labels).reduce((n, s) => n + s.value, 0)
  return { types, samples, find, value, total }
}

/**
 * Counters and histograms are process-wide (every hub this process ran counts in them): `since(m)`
 * reads a sample of `m` as its growth from the first reading.
 */
const since =
  (start: ReturnType<typeof parse>) =>
  (m: ReturnType<typeof parse>, name: string, labels: Record<string, string> = {}) =>
    m.value(name, labels) - start.total(name, labels)

describe("/metrics", () => {
  it.scopedLive(
    "a real run shows in the queue, worker and RPC metrics, with no id in any label",
    () =>
      Effect.gen(function* () {
        const { admin, hub, key, projectId } = yield* swarmHub
        const start = parse((yield* request(hub, "GET", "/metrics")).text)
        const grown = since(start)
        yield* startWorker({ name: "m", tcpPort: hub.tcpPort, key, args: ["--trust-shell", "--concurrency", "3", "--quiet"] })

        const ids: Array<TaskId> = []
        for (let i = 0; i < 5; i++) ids.push((yield* admin.task.enqueue({ projectId, kind: "noop", payload: { i } })).id)
        ids.push((yield* admin.task.enqueue({ projectId, kind: "shell", payload: { command: "exit 3" }, maxAttempts: 1 })).id)
        const human = yield* admin.task.enqueue({ projectId, kind: "human", payload: { question: "ok?" } })
        yield* admin.task.cancel({ taskId: human.id })
        const tasks = yield* waitAll(admin, [...ids, human.id])
        assert.deepStrictEqual(
          tasks.filter((t) => t.kind === "noop").map((t) => t.status),
          ["done", "done", "done", "done", "done"]
        )
        const shell = tasks.find((t) => t.kind === "shell")!
        assert.include(["failed", "dead"], shell.status)

        const reply = yield* request(hub, "GET", "/metrics")
        assert.strictEqual(reply.status, 200)
        const m = parse(reply.text)

        // task gauges: every kind × status, from the queue's counts
        for (const kind of ["noop", "shell", "human", "agent"]) {
          for (const status of ["waiting", "queued", "leased", "done", "failed", "dead", "cancelled"]) {
            const expected = tasks.filter((t) => t.kind === kind && t.status === status).length
            assert.strictEqual(m.value("kiris_tasks", { kind, status }), expected, `kiris_tasks{kind=${kind},status=${status}}`)
          }
        }
        assert.strictEqual(m.types.get("kiris_tasks"), "gauge")
        assert.strictEqual(grown(m, "kiris_tasks_enqueued_total", { kind: "noop" }), 5)
        assert.strictEqual(grown(m, "kiris_tasks_completed_total", { kind: "noop" }), 5)
        assert.strictEqual(grown(m, `kiris_tasks_${shell.status}_total`, { kind: "shell" }), 1)

        // dispatch and run histograms: one observation per lease
        assert.strictEqual(m.types.get("kiris_task_dispatch_seconds"), "histogram")
        for (const kind of ["noop", "shell"]) {
          const leased = tasks.filter((t) => t.kind === kind).reduce((n, t) => n + t.attempts, 0)
          assert.strictEqual(grown(m, "kiris_task_dispatch_seconds_count", { kind }), leased, `dispatches of ${kind}`)
          assert.strictEqual(grown(m, "kiris_task_dispatch_seconds_bucket", { kind, le: "+Inf" }), leased)
          assert.strictEqual(grown(m, "kiris_task_run_seconds_count", { kind }), leased, `runs of ${kind}`)
          const buckets = m.find("kiris_task_dispatch_seconds_bucket", { kind }).map((s) => s.value)
          assert.deepStrictEqual(
            buckets,
            [...buckets].sort((a, b) => a - b),
            "cumulative buckets"
          )
        }
        const humanDispatches = (r: ReturnType<typeof parse>) => r.total("kiris_task_dispatch_seconds_count", { kind: "human" })
        assert.strictEqual(humanDispatches(m) - humanDispatches(start), 0)

        // the worker: one connected, its concurrency as slots
        assert.strictEqual(m.value("kiris_workers_connected"), 1)
        assert.strictEqual(m.value("kiris_worker_slots"), 3)
        assert.isAtLeast(m.value("kiris_open_connections", { transport: "tcp" }), 2)

        // RPC latency by tag, through the auth middleware
        assert.strictEqual(m.types.get("kiris_rpc_duration_seconds"), "histogram")
        assert.strictEqual(grown(m, "kiris_rpc_duration_seconds_count", { tag: "task.enqueue" }), 7)
        assert.strictEqual(grown(m, "kiris_rpc_duration_seconds_bucket", { tag: "task.enqueue", le: "+Inf" }), 7)

        // the HTTP request counter is still there, and the other families are declared
        assert.strictEqual(m.types.get("kiris_http_requests_total"), "counter")
        assert.strictEqual(m.types.get("kiris_event_subscribers"), "gauge")
        assert.isAtLeast(m.value("kiris_event_subscribers"), 0)
        assert.strictEqual(m.types.get("kiris_event_lag_drops_total"), "counter")
        assert.strictEqual(m.types.get("kiris_agent_turns_total"), "counter")
        assert.strictEqual(m.types.get("kiris_model_tokens_total"), "counter")

        // bounded cardinality: no id of a task, session, user, worker or project in a label
        for (const s of m.samples) {
          for (const [k, v] of Object.entries(s.labels)) {
            assert.notMatch(v, /(^|[^a-z])(tsk|ses|usr|wrk|prj|msg|key)_[A-Za-z0-9]/, `${s.name} ${k}=${v}`)
            for (const id of [...ids, human.id, projectId]) assert.notInclude(v, id)
          }
        }
      }),
    180_000
  )

  it.scopedLive("an agent turn counts by outcome, and its tokens and cost by provider and model", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const hub = yield* startAgentHub(fake, { modelPrices: { "openai-compatible:priced": ModelPrice.make({ input: 2, output: 10 }) } })
      const client = yield* hub.wsClient()
      const project = yield* client.project.create({ name: "metered" })
      const watch = yield* watchProject(client, project.id)
      const session = yield* client.session.create({ projectId: project.id, model: "openai-compatible:priced" })
      const grown = since(parse((yield* request(hub, "GET", "/metrics")).text))
      fake.script({ text: "one", usage: { prompt_tokens: 1000, completion_tokens: 500 } })
      yield* client.session.prompt({ projectId: project.id, sessionId: session.id, text: "hello" })
      yield* watch.until((events) =>
        events.some((e) => {
          const body = e.event as { _tag: string; sessionId?: string; status?: string }
          return body._tag === "SessionStatus" && body.sessionId === session.id && body.status === "idle"
        })
          ? true
          : undefined
      )
      const m = parse((yield* request(hub, "GET", "/metrics")).text)
      assert.strictEqual(grown(m, "kiris_agent_turns_total", { outcome: "completed" }), 1)
      const model = { provider: "openai-compatible", model: "priced" }
      assert.strictEqual(grown(m, "kiris_model_tokens_total", { ...model, direction: "input" }), 1000)
      assert.strictEqual(grown(m, "kiris_model_tokens_total", { ...model, direction: "output" }), 500)
      assert.closeTo(grown(m, "kiris_model_cost_dollars_total", model), 0.007, 1e-9)
      for (const s of m.samples) for (const v of Object.values(s.labels)) assert.notInclude(v, session.id)
    })
  )

  it.scopedLive("a lease that expires counts by kind, and its attempt's run time is observed", () =>
    Effect.gen(function* () {
      const { queue } = yield* startQueue({ reaperIntervalMs: 20 })
      const snapshot = () => parse(render(Metric.unsafeSnapshot(), { include: (n) => n.startsWith("kiris_task"), declared }))
      const count = (m: ReturnType<typeof parse>, name: string) => m.find(name, { kind: "noop" }).reduce((n, s) => n + s.value, 0)
      const before = snapshot()
      const t = yield* queue.enqueue(task({ maxAttempts: 1 }))
      const [lease] = yield* queue.lease(worker("dies"), ["noop"], 1, 0.05)
      assert.strictEqual(lease!.task.id, t.id)
      yield* eventually(queue.get(t.id), (x) => x.status === "dead")
      const after = snapshot()
      assert.strictEqual(count(after, "kiris_task_lease_expiries_total") - count(before, "kiris_task_lease_expiries_total"), 1)
      assert.strictEqual(count(after, "kiris_tasks_dead_total") - count(before, "kiris_tasks_dead_total"), 1)
      assert.strictEqual(count(after, "kiris_task_run_seconds_count") - count(before, "kiris_task_run_seconds_count"), 1)
      assert.strictEqual(count(after, "kiris_task_dispatch_seconds_count") - count(before, "kiris_task_dispatch_seconds_count"), 1)
    })
  )

  it.effect("the formatter escapes label values and help text, and writes histograms in full", () =>
    Effect.gen(function* () {
      const counter = Metric.counter("fmt_test_total", { description: "a\\b\nc" })
      yield* Metric.incrementBy(Metric.tagged(counter, "v", 'q"b\\s\nn'), 2)
      const hist = Metric.histogram("fmt_test_seconds", MetricBoundaries.fromIterable([1, 5]), "h")
      for (const v of [0.5, 3, 10]) yield* Metric.update(Metric.tagged(hist, "kind", "noop"), v)
      const text = render(Metric.unsafeSnapshot(), { include: (n) => n.startsWith("fmt_test") })
      assert.include(text, "# HELP fmt_test_total a\\\\b\\nc\n# TYPE fmt_test_total counter\n")
      assert.include(text, 'fmt_test_total{v="q\\"b\\\\s\\nn"} 2\n')
      assert.include(
        text,
        [
          "# HELP fmt_test_seconds h",
          "# TYPE fmt_test_seconds histogram",
          'fmt_test_seconds_bucket{kind="noop",le="1"} 1',
          'fmt_test_seconds_bucket{kind="noop",le="5"} 2',
          'fmt_test_seconds_bucket{kind="noop",le="+Inf"} 3',
          'fmt_test_seconds_sum{kind="noop"} 13.5',
          'fmt_test_seconds_count{kind="noop"} 3'
        ].join("\n")
      )
    })
  )
})

describe("--log-format json", () => {
  it.scopedLive(
    "kiris serve writes one JSON object per line, the listening line included",
    () =>
      Effect.gen(function* () {
        const dir = tempDir()
        const proc = yield* spawnKiris(["serve", "--log-format", "json", "--port", "0", "--tcp-port", "0", "--data-dir", dir], { cwd: dir })
        const [line] = yield* proc.waitForLine(/^.*kiris listening.*$/, "60 seconds")
        const record = JSON.parse(line) as { message: unknown; logLevel: unknown; timestamp: unknown; fiberId: unknown }
        assert.match(String(record.message), /^kiris listening http=http:\/\/127\.0\.0\.1:\d+ tcp=127\.0\.0\.1:\d+$/)
        assert.strictEqual(record.logLevel, "INFO")
        assert.isFalse(Number.isNaN(Date.parse(String(record.timestamp))))
        assert.isString(record.fiberId)
        for (const out of proc
          .stdout()
          .split("\n")
          .filter((l) => l !== "")) {
          assert.doesNotThrow(() => JSON.parse(out), undefined, out)
        }
      }),
    90_000
  )

  it.scopedLive(
    "an invalid logFormat is a one-line error",
    () =>
      Effect.gen(function* () {
        const dir = tempDir()
        const proc = yield* spawnKiris(["serve", "--port", "0", "--tcp-port", "0", "--data-dir", dir], {
          cwd: dir,
          env: { KIRIS_LOG_FORMAT: "yaml" }
        })
        const exited = yield* proc.exited("60 seconds")
        assert.strictEqual(exited.code, 1)
        assert.strictEqual(proc.stderr().trim(), `error: KIRIS_LOG_FORMAT: expected one of (pretty, json), got "yaml"`)
      }),
    90_000
  )
})
