/**
 * The streaming path from the model's deltas to subscribed clients. A hub runs in a child process
 * (so its CPU time and memory are its own) with the fake OpenAI-compatible model of the tests in
 * this process, and WebSocket clients (the project's RPC client) subscribed to the project here.
 * Reports
 *   1. first delta: the model's first delta leaving the fake server → the first subscribed client
 *      has it; median and max over `--turns` turns (default 20);
 *   2. per delta: the model sending one delta every `--gap` ms (default 20), `--paced` deltas
 *      (default 100): each delta's latency to the client, p50 / p99, and the hub's CPU per delta;
 *   3. hub CPU per model delta: a model sending `--deltas` deltas (default 5,000) as fast as it
 *      can, one subscriber;
 *   4. fan-out to `--subscribers` clients (default 100): a fast model (`--fanout` deltas, default
 *      5,000) and a trickling one (`--trickle` deltas, default 300, one every 2 ms): model deltas
 *      delivered per second summed over the clients, and how many events they came in; next to a
 *      raw `ws` broadcast of as many messages from a process of its own to as many clients (ratio);
 *   5. peak RSS of the hub and of this process.
 * Then the connection rows of scripts/bench/_realtime-connections.ts, when that file exists.
 * `--profile DIR` writes a CPU profile of the hub (`node --cpu-prof`) to DIR. Usage:
 *   npm run bench -- realtime [--turns 20] [--paced 100] [--gap 20] [--deltas 5000] [--subscribers 100]
 *     [--fanout 5000] [--trickle 300] [--profile DIR]
 */
import { HttpServer } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { ConfigProvider, Context, Deferred, Effect, Layer, Stream } from "effect"
import { type ChildProcess, fork } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { WebSocket, WebSocketServer } from "ws"
import { HubLayer } from "../../src/AppLayer.js"
import { type HubRpcClient, makeHubClient } from "../../src/client/HubClient.js"
import { ServerConfig } from "../../src/config/ServerConfig.js"
import type { ProjectId, SessionId } from "../../src/domain/Ids.js"
import { type FakeOpenAI, startFakeOpenAI } from "../../test/support/FakeOpenAI.js"
import { flag } from "./_flags.js"
import { mb, peakRss, runBench } from "./_main.js"

const here = fileURLToPath(import.meta.url)

// ---------------------------------------------------------------------------------------------
// The hub process: a whole hub pointed at the fake model, plus a raw `ws` broadcaster (baseline).
// ---------------------------------------------------------------------------------------------

type ToHub = { readonly type: "usage" } | { readonly type: "broadcast"; readonly count: number; readonly payload: string } | { readonly type: "exit" }
type FromHub =
  | { readonly type: "ready"; readonly httpPort: number; readonly rawPort: number; readonly adminKey: string }
  | { readonly type: "usage"; readonly cpuMicros: number; readonly maxRssBytes: number }
  | { readonly type: "broadcasted" }

const option = (name: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? undefined : process.argv[i + 1]
}

const runHubProcess = (fakeUrl: string, dataDir: string) => {
  const send = (msg: FromHub) => process.send?.(msg)
  const raw = new WebSocketServer({ port: 0, host: "127.0.0.1" })
  const hub = Effect.gen(function* () {
    const config = ServerConfig.layerWith({ dataDir, port: 0, tcpPort: 0 })
    const context = yield* Layer.build(HubLayer.pipe(Layer.provide(config), Layer.provide(NodeContext.layer))).pipe(
      Effect.withConfigProvider(
        ConfigProvider.fromMap(
          new Map([
            ["KIRIS_MODEL", "openai-compatible:fake"],
            ["KIRIS_OPENAI_COMPATIBLE_BASE_URL", fakeUrl],
            ["KIRIS_LLM_MAX_RETRIES", "0"]
          ])
        )
      )
    )
    const httpPort = (Context.get(context, HttpServer.HttpServer).address as HttpServer.TcpAddress).port
    const adminKey = fs.readFileSync(path.join(dataDir, "admin.key"), "utf8").trim()
    if (raw.address() === null) yield* Effect.async<void>((resume) => void raw.once("listening", () => resume(Effect.void)))
    const rawPort = (raw.address() as { port: number }).port
    send({ type: "ready", httpPort, rawPort, adminKey })
    return yield* Effect.never
  })
  process.on("message", (msg: ToHub) => {
    if (msg.type === "usage") {
      const cpu = process.cpuUsage()
      send({ type: "usage", cpuMicros: cpu.user + cpu.system, maxRssBytes: process.resourceUsage().maxRSS * 1024 })
    } else if (msg.type === "broadcast") {
      for (let i = 0; i < msg.count; i++) for (const client of raw.clients) client.send(msg.payload)
      send({ type: "broadcasted" })
    } else if (msg.type === "exit") {
      process.exit(0)
    }
  })
  Effect.runFork(Effect.scoped(hub))
}

// ---------------------------------------------------------------------------------------------
// The benchmark.
// ---------------------------------------------------------------------------------------------

const turns = Math.max(1, flag("turns", 20))
const paced = Math.max(2, flag("paced", 100))
const gap = Math.max(0, flag("gap", 20))
const fastDeltas = Math.max(10, flag("deltas", 5000))
const subscribers = Math.max(1, flag("subscribers", 100))
const fanoutDeltas = Math.max(10, flag("fanout", 5000))
const trickleDeltas = Math.max(10, flag("trickle", 300))
const profileDir = option("profile")

/** `n` chunks of 8 characters each (the fake sends one chunk per word). */
const WIDTH = 8
const text = (n: number) => Array.from({ length: n }, (_, i) => ` w${String(i).padStart(WIDTH - 2, "0")}`).join("")

const quantile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN
const ms = (n: number) => `${n.toFixed(2)} ms`
const perSecond = (n: number, millis: number) => `${Math.round(n / (millis / 1000)).toLocaleString("en-US")}/s`

/** What one subscribed client has received of the current turn. */
interface Tracker {
  chars: number
  events: number
  firstAt: number | undefined
  /** Called with the client's total characters after each delta event. */
  onDelta: ((chars: number, at: number) => void) | undefined
  waiters: Array<{ readonly chars: number; readonly resolve: () => void }>
}

const newTracker = (): Tracker => ({ chars: 0, events: 0, firstAt: undefined, onDelta: undefined, waiters: [] })

const reset = (t: Tracker) => {
  t.chars = 0
  t.events = 0
  t.firstAt = undefined
  t.onDelta = undefined
}

const hasChars = (t: Tracker, chars: number) =>
  Effect.promise(
    () =>
      new Promise<void>((resolve) => {
        if (t.chars >= chars) resolve()
        else t.waiters.push({ chars, resolve })
      })
  )

const subscribe = (client: HubRpcClient, projectId: ProjectId, t: Tracker) =>
  Effect.gen(function* () {
    const ready = yield* Deferred.make<void>()
    yield* client.events.subscribe({ projectId }).pipe(
      Stream.runForEach((item) =>
        Effect.sync(() => {
          if (item._tag === "Ready") Deferred.unsafeDone(ready, Effect.void)
          if (item._tag === "Lagged") throw new Error(`a subscriber lagged by ${item.missed}`)
          if (item._tag !== "Event" || item.event.event._tag !== "PartDelta") return
          const at = performance.now()
          t.firstAt ??= at
          t.events++
          t.chars += item.event.event.delta.length
          t.onDelta?.(t.chars, at)
          if (t.waiters.length > 0) {
            const still = t.waiters.filter((w) => t.chars < w.chars)
            for (const w of t.waiters) if (t.chars >= w.chars) w.resolve()
            t.waiters = still
          }
        })
      ),
      Effect.forkScoped
    )
    yield* Deferred.await(ready)
  })

const program = Effect.gen(function* () {
  const fake: FakeOpenAI = yield* Effect.acquireRelease(
    Effect.promise(() => startFakeOpenAI()),
    (f) => Effect.promise(() => f.close())
  )
  const execArgv = profileDir === undefined ? process.execArgv : [...process.execArgv, "--cpu-prof", "--cpu-prof-dir", path.resolve(profileDir)]
  const child: ChildProcess = yield* Effect.acquireRelease(
    Effect.sync(() =>
      fork(here, ["--hub-process", "--fake-url", fake.baseURL, "--data-dir", dataDir], { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] })
    ),
    (c) =>
      Effect.async<void>((resume) => {
        if (c.exitCode !== null) return resume(Effect.void)
        c.once("exit", () => resume(Effect.void))
        c.send({ type: "exit" } satisfies ToHub)
      })
  )
  const replies: Array<(msg: FromHub) => void> = []
  child.on("message", (msg: FromHub) => replies.shift()?.(msg))
  const ask = (msg: ToHub | undefined) =>
    Effect.promise(
      () =>
        new Promise<FromHub>((resolve) => {
          replies.push(resolve)
          if (msg !== undefined) child.send(msg)
        })
    )
  const ready = yield* ask(undefined)
  if (ready.type !== "ready") throw new Error(`unexpected ${ready.type}`)
  const usage = Effect.map(ask({ type: "usage" }), (u) => (u.type === "usage" ? u : { cpuMicros: 0, maxRssBytes: 0 }))
  const connect = makeHubClient({ transport: "ws", url: `ws://127.0.0.1:${ready.httpPort}/rpc` }, ready.adminKey)

  const admin = yield* connect
  const project = yield* admin.project.create({ name: "realtime", description: "" })
  const projectId = project.id as ProjectId
  const sessionId = (yield* admin.session.create({ projectId })).id as SessionId
  const main = newTracker()
  yield* subscribe(admin, projectId, main)

  /** Runs one turn whose model sends `n` chunks `delayMs` apart; resolves once every tracker has the whole text. */
  const turn = (n: number, delayMs: number, trackers: ReadonlyArray<Tracker>, sent?: (index: number) => void, onDelta?: Tracker["onDelta"]) =>
    Effect.gen(function* () {
      for (const t of trackers) reset(t)
      if (trackers[0] !== undefined) trackers[0].onDelta = onDelta
      fake.script({ slow: { text: text(n), delayMs, ...(sent ? { sent } : {}) } })
      yield* admin.session.prompt({ projectId, sessionId, text: "go" })
      yield* Effect.forEach(trackers, (t) => hasChars(t, n * WIDTH), { discard: true, concurrency: "unbounded" })
      // the turn ends (session idle) before the next one is prompted
      for (;;) {
        const status = (yield* admin.session.get({ projectId, sessionId })).session.status
        if (status === "idle") break
        yield* Effect.sleep("5 millis")
      }
    })

  // 1. First delta.
  const firsts: Array<number> = []
  for (let i = 0; i < turns; i++) {
    let sentAt = 0
    yield* turn(8, 0, [main], (index) => {
      if (index === 0) sentAt = performance.now()
    })
    firsts.push((main.firstAt ?? NaN) - sentAt)
  }
  firsts.sort((a, b) => a - b)
  console.log(
    `first delta (model → first subscribed client), ${turns} turns: median ${ms(quantile(firsts, 0.5))}, max ${ms(firsts[firsts.length - 1] ?? NaN)}`
  )

  // 2. One delta every `gap` ms.
  {
    const sentAt: Array<number> = []
    const latencies: Array<number> = []
    let covered = 0
    const before = yield* usage
    yield* turn(
      paced,
      gap,
      [main],
      (index) => void (sentAt[index] = performance.now()),
      (chars, at) => {
        for (; covered < Math.floor(chars / WIDTH); covered++) latencies.push(at - (sentAt[covered] ?? at))
      }
    )
    const after = yield* usage
    latencies.sort((a, b) => a - b)
    console.log(
      `per delta, one every ${gap} ms (${paced} deltas): p50 ${ms(quantile(latencies, 0.5))}, p99 ${ms(quantile(latencies, 0.99))}, max ${ms(latencies[latencies.length - 1] ?? NaN)} (${latencies.length} measured, ${main.events} events); hub CPU ${((after.cpuMicros - before.cpuMicros) / paced).toFixed(1)} µs/delta`
    )
  }

  // 3. Hub CPU per model delta, a fast model.
  {
    const before = yield* usage
    const started = performance.now()
    yield* turn(fastDeltas, 0, [main])
    const elapsed = performance.now() - started
    const after = yield* usage
    console.log(
      `hub CPU per model delta, fast model (${fastDeltas} deltas, 1 subscriber): ${((after.cpuMicros - before.cpuMicros) / fastDeltas).toFixed(1)} µs (turn ${ms(elapsed)}, ${main.events} events)`
    )
  }

  // 4. Fan-out.
  const clients = [main]
  for (let i = 1; i < subscribers; i++) {
    const t = newTracker()
    yield* subscribe(yield* connect, projectId, t)
    clients.push(t)
  }
  const fanout = (label: string, n: number, delayMs: number) =>
    Effect.gen(function* () {
      let startedAt = 0
      const before = yield* usage
      yield* turn(n, delayMs, clients, (index) => {
        if (index === 0) startedAt = performance.now()
      })
      const elapsed = performance.now() - startedAt
      const after = yield* usage
      const events = clients.reduce((sum, t) => sum + t.events, 0)
      const rate = (n * clients.length) / (elapsed / 1000)
      console.log(
        `fan-out to ${clients.length}, ${label} (${n} deltas): ${perSecond(n * clients.length, elapsed)} model deltas delivered in ${events.toLocaleString("en-US")} events (${(events / clients.length).toFixed(0)} per client); hub CPU ${((after.cpuMicros - before.cpuMicros) / n).toFixed(1)} µs/model delta`
      )
      return rate
    })
  const fast = yield* fanout("fast model", fanoutDeltas, 0)
  yield* fanout("trickling model, one every 2 ms", trickleDeltas, 2)

  // The raw `ws` baseline: as many messages (one event's frame each) from the hub's process.
  {
    const sockets = yield* Effect.forEach(Array.from({ length: clients.length }), () =>
      Effect.async<WebSocket>((resume) => {
        const ws = new WebSocket(`ws://127.0.0.1:${ready.rawPort}`)
        ws.once("open", () => resume(Effect.succeed(ws)))
      })
    )
    const payload = JSON.stringify({
      _tag: "Chunk",
      requestId: "1",
      values: [
        {
          _tag: "Event",
          event: {
            seq: 1,
            projectId,
            at: 1_796_000_000_000,
            event: { _tag: "PartDelta", sessionId, messageId: "msg_x", partId: "prt_x", delta: " w000001" }
          }
        }
      ]
    })
    let done = 0
    const all = new Promise<void>((resolve) => {
      for (const ws of sockets) {
        let got = 0
        ws.on("message", () => {
          if (++got === fanoutDeltas && ++done === sockets.length) resolve()
        })
      }
    })
    const started = performance.now()
    yield* ask({ type: "broadcast", count: fanoutDeltas, payload })
    yield* Effect.promise(() => all)
    const elapsed = performance.now() - started
    const raw = (fanoutDeltas * sockets.length) / (elapsed / 1000)
    console.log(
      `raw ws broadcast to ${sockets.length} (${fanoutDeltas} messages of ${payload.length} B): ${perSecond(fanoutDeltas * sockets.length, elapsed)}; hub fast fan-out / raw = ${(fast / raw).toFixed(2)}`
    )
    for (const ws of sockets) ws.close()
  }

  const final = yield* usage
  console.log(`peak RSS: hub ${mb(final.maxRssBytes)}, bench process ${peakRss().replace("peak RSS ", "")}`)

  const connections = path.join(path.dirname(here), "_realtime-connections.ts")
  if (fs.existsSync(connections)) {
    const mod = (yield* Effect.promise(() => import(pathToFileURL(connections).href))) as Record<string, unknown>
    const run = [mod["default"], ...Object.values(mod)].find((f): f is () => Promise<unknown> => typeof f === "function")
    if (run !== undefined) yield* Effect.promise(() => run())
  }
})

const dataDir = option("data-dir") ?? fs.mkdtempSync(path.join(os.tmpdir(), "kiris-bench-realtime-"))
if (process.argv.includes("--hub-process")) runHubProcess(option("fake-url") ?? "", dataDir)
else void runBench(program, dataDir)
