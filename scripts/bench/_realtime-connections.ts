/**
 * What one connection costs the hub, next to the raw `ws` / `net` servers it is built on. A hub
 * runs in a child process (with `--expose-gc`, so its heap can be measured after a collection),
 * beside a raw `ws` echo server and a raw `net` NDJSON echo server in the same process. Reports
 *   1. unary round trip: `user.whoami` one call at a time (`--conn-calls`, default 1,000) over
 *      WebSocket and over TCP, p50 / p99, next to an echo of a frame of the same size over raw
 *      `ws` and raw `net` (ratio of the p50s);
 *   2. idle memory: `--conn-clients` clients (default 300) each holding `events.subscribe` on one
 *      project, over WebSocket and over TCP, then as many clients holding a raw `ws` connection:
 *      the hub's heap (after gc) and RSS growth divided by the number of clients; the same for
 *      clients that made one `user.whoami` and stay open (a connection without a subscription);
 *   3. the hub process's peak RSS.
 * Runs at the end of `npm run bench -- realtime`, or on its own:
 *   npx tsx scripts/bench/_realtime-connections.ts [--conn-calls 1000] [--conn-clients 300]
 */
import { HttpServer, SocketServer } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { Context, Effect, Layer } from "effect"
import { type ChildProcess, fork } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { WebSocket, WebSocketServer } from "ws"
import { HubLayer } from "../../src/AppLayer.js"
import { ServerConfig } from "../../src/config/ServerConfig.js"
import { flag } from "./_flags.js"
import { mb } from "./_main.js"

const here = fileURLToPath(import.meta.url)

type ToHub = { readonly type: "memory" } | { readonly type: "exit" }
type FromHub =
  | {
      readonly type: "ready"
      readonly httpPort: number
      readonly tcpPort: number
      readonly rawWsPort: number
      readonly rawNetPort: number
      readonly adminKey: string
    }
  | { readonly type: "memory"; readonly heapUsed: number; readonly rss: number; readonly maxRss: number }

// ---------------------------------------------------------------------------------------------
// The hub process: a whole hub, a raw `ws` echo server and a raw `net` NDJSON echo server.
// ---------------------------------------------------------------------------------------------

const runHubProcess = (dataDir: string) => {
  const send = (msg: FromHub) => process.send?.(msg)
  const gc = (globalThis as { gc?: () => void }).gc
  const rawWs = new WebSocketServer({ port: 0, host: "127.0.0.1" })
  rawWs.on("connection", (ws) => ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary })))
  const rawNet = net.createServer((socket) => {
    socket.setNoDelay(true)
    let buffer = ""
    socket.on("data", (data) => {
      buffer += data.toString("utf8")
      for (let nl = buffer.indexOf("\n"); nl !== -1; nl = buffer.indexOf("\n")) {
        socket.write(buffer.slice(0, nl + 1))
        buffer = buffer.slice(nl + 1)
      }
    })
    socket.on("error", () => socket.destroy())
  })
  /** Waits until `server` listens (it may already). */
  const listening = (server: { address: () => unknown; once: (e: "listening", f: () => void) => unknown }) =>
    Effect.async<void>((resume) => {
      if (server.address() !== null) resume(Effect.void)
      else server.once("listening", () => resume(Effect.void))
    })
  const hub = Effect.gen(function* () {
    const config = ServerConfig.layerWith({ dataDir, port: 0, tcpPort: 0 })
    const context = yield* Layer.build(HubLayer.pipe(Layer.provide(config), Layer.provide(NodeContext.layer)))
    const httpPort = (Context.get(context, HttpServer.HttpServer).address as HttpServer.TcpAddress).port
    const tcpPort = (Context.get(context, SocketServer.SocketServer).address as SocketServer.TcpAddress).port
    const adminKey = fs.readFileSync(path.join(dataDir, "admin.key"), "utf8").trim()
    rawNet.listen(0, "127.0.0.1")
    yield* listening(rawWs)
    yield* listening(rawNet)
    send({
      type: "ready",
      httpPort,
      tcpPort,
      rawWsPort: (rawWs.address() as net.AddressInfo).port,
      rawNetPort: (rawNet.address() as net.AddressInfo).port,
      adminKey
    })
    return yield* Effect.never
  })
  process.on("message", (msg: ToHub) => {
    if (msg.type === "memory") {
      // twice: the first collection may leave objects with finalizers for the second
      gc?.()
      gc?.()
      const usage = process.memoryUsage()
      send({ type: "memory", heapUsed: usage.heapUsed, rss: usage.rss, maxRss: process.resourceUsage().maxRSS * 1024 })
    } else if (msg.type === "exit") {
      process.exit(0)
    }
  })
  Effect.runFork(Effect.scoped(hub))
}

// ---------------------------------------------------------------------------------------------
// The clients (this process).
// ---------------------------------------------------------------------------------------------

const quantile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN
const ms = (n: number) => `${n.toFixed(3)} ms`
const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`

/** One frame-at-a-time client of either framing: `call` sends a frame and waits for the next reply that `done` accepts. */
interface FrameClient {
  readonly send: (text: string) => void
  readonly next: (done: (text: string) => boolean) => Promise<string>
  readonly close: () => void
}

const frameClient = (write: (text: string) => void, close: () => void) => {
  let waiting: { readonly done: (text: string) => boolean; readonly resolve: (text: string) => void } | undefined
  const receive = (text: string) => {
    if (waiting !== undefined && waiting.done(text)) {
      const { resolve } = waiting
      waiting = undefined
      resolve(text)
    }
  }
  const client: FrameClient = {
    send: write,
    next: (done) => new Promise<string>((resolve) => void (waiting = { done, resolve })),
    close
  }
  return { client, receive }
}

const connectWs = (url: string, onText?: (text: string, ws: WebSocket) => void) =>
  new Promise<FrameClient>((resolve, reject) => {
    const ws = new WebSocket(url)
    const { client, receive } = frameClient(
      (text) => ws.send(text),
      () => ws.terminate()
    )
    ws.on("message", (data) => {
      const text = String(data)
      onText?.(text, ws)
      receive(text)
    })
    ws.once("open", () => resolve(client))
    ws.once("error", reject)
  })

const connectNet = (port: number, onText?: (text: string, socket: net.Socket) => void) =>
  new Promise<FrameClient>((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, noDelay: true })
    const { client, receive } = frameClient(
      (text) => void socket.write(text + "\n"),
      () => socket.destroy()
    )
    let buffer = ""
    socket.on("data", (data) => {
      buffer += data.toString("utf8")
      for (let nl = buffer.indexOf("\n"); nl !== -1; nl = buffer.indexOf("\n")) {
        const line = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        onText?.(line, socket)
        receive(line)
      }
    })
    socket.once("connect", () => resolve(client))
    socket.once("error", reject)
  })

/** Round trips of `frame(i)` one at a time (after `warmup` untimed ones), in ms, sorted. */
const roundTrips = async (client: FrameClient, calls: number, frame: (i: number) => string, isReply: (text: string, i: number) => boolean) => {
  const warmup = Math.min(200, calls)
  const times: Array<number> = []
  for (let i = 0; i < warmup + calls; i++) {
    const started = performance.now()
    const reply = client.next((text) => isReply(text, i))
    client.send(frame(i))
    await reply
    if (i >= warmup) times.push(performance.now() - started)
  }
  return times.sort((a, b) => a - b)
}

const request = (id: number, tag: string, payload: unknown, token: string) =>
  JSON.stringify({ _tag: "Request", id: String(id), tag, payload, headers: [["authorization", `Bearer ${token}`]] })

/** Opens `n` clients, `batch` at a time. */
const openAll = async <A>(n: number, open: () => Promise<A>, batch = 50) => {
  const all: Array<A> = []
  for (let i = 0; i < n; i += batch) all.push(...(await Promise.all(Array.from({ length: Math.min(batch, n - i) }, open))))
  return all
}

export interface ConnectionRowsOptions {
  /** Sequential unary calls timed per transport. */
  readonly calls?: number
  /** Idle subscribed clients per transport. */
  readonly clients?: number
}

/** Prints the connection rows (see the top of this file); the hub runs in a child process for the duration. */
export const connectionRows = async (opts: ConnectionRowsOptions = {}): Promise<void> => {
  const calls = Math.max(10, opts.calls ?? flag("conn-calls", 1000))
  const clients = Math.max(1, opts.clients ?? flag("conn-clients", 300))
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kiris-bench-connections-"))
  const child: ChildProcess = fork(here, ["--connections-hub", dataDir], {
    execArgv: [...process.execArgv, "--expose-gc"],
    stdio: ["ignore", "ignore", "inherit", "ipc"]
  })
  const replies: Array<(msg: FromHub) => void> = []
  child.on("message", (msg: FromHub) => replies.shift()?.(msg))
  const nextReply = () => new Promise<FromHub>((resolve) => void replies.push(resolve))
  const memory = async () => {
    const reply = nextReply()
    child.send({ type: "memory" } satisfies ToHub)
    const msg = await reply
    if (msg.type !== "memory") throw new Error(`unexpected reply from the hub process: ${msg.type}`)
    return msg
  }
  try {
    const ready = await nextReply()
    if (ready.type !== "ready") throw new Error("the hub process did not start")
    const { adminKey: key } = ready
    const wsUrl = `ws://127.0.0.1:${ready.httpPort}/rpc`
    const exitOf = (id: number) => (text: string) => text.includes(`"requestId":"${id}"`) && text.includes(`"_tag":"Exit"`)

    // 1. unary round trips
    console.log(`connections: unary round trip, ${calls} calls one at a time`)
    const whoami = (i: number) => request(i + 1, "user.whoami", {}, key)
    const echo = whoami(0)
    const row = async (name: string, hub: FrameClient, raw: FrameClient) => {
      const ours = await roundTrips(hub, calls, whoami, (text, i) => exitOf(i + 1)(text))
      if (ours.length === 0) throw new Error("no round trips")
      const base = await roundTrips(
        raw,
        calls,
        () => echo,
        () => true
      )
      hub.close()
      raw.close()
      const p50 = quantile(ours, 0.5)
      const rawP50 = quantile(base, 0.5)
      console.log(
        `  ${name.padEnd(10)} user.whoami p50 ${ms(p50)} p99 ${ms(quantile(ours, 0.99))}; raw echo p50 ${ms(rawP50)} p99 ${ms(quantile(base, 0.99))}; p50 ratio ${(p50 / rawP50).toFixed(2)}`
      )
    }
    await row("WebSocket", await connectWs(wsUrl), await connectWs(`ws://127.0.0.1:${ready.rawWsPort}`))
    await row("TCP", await connectNet(ready.tcpPort), await connectNet(ready.rawNetPort))

    // 2. idle memory per client
    const admin = await connectWs(wsUrl)
    const created = admin.next(exitOf(1))
    admin.send(request(1, "project.create", { name: "connections" }, key))
    const project = JSON.parse(await created) as { exit?: { value?: { id?: string } } }
    const projectId = project.exit?.value?.id ?? ""
    if (projectId === "") throw new Error(`project.create did not return a project: ${JSON.stringify(project).slice(0, 300)}`)
    admin.close()

    const subscribe = request(1, "events.subscribe", { projectId }, key)
    /** Acks every chunk (the server sends no more of a stream until then) and resolves on the first (`Ready`). */
    const subscribed = async <T>(
      connect: (onText: (text: string, transport: T) => void) => Promise<FrameClient>,
      ack: (transport: T, text: string) => void
    ) => {
      const client = await connect((text, transport) => {
        if (text.includes(`"_tag":"Chunk"`)) ack(transport, JSON.stringify({ _tag: "Ack", requestId: "1" }))
      })
      const first = client.next((text) => text.includes(`"_tag":"Chunk"`) || text.includes(`"_tag":"Exit"`) || text.includes(`"_tag":"Defect"`))
      client.send(subscribe)
      await first
      return client
    }
    /** The hub's memory once closed connections are gone: readings 100 ms apart until the heap stops shrinking. */
    const settled = async () => {
      let last = await memory()
      for (let i = 0; i < 50; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        const now = await memory()
        if (now.heapUsed > last.heapUsed - 64 * 1024) return now
        last = now
      }
      return last
    }
    const perClient = async (name: string, open: () => Promise<FrameClient>) => {
      const before = await settled()
      const all = await openAll(clients, open)
      const after = await settled()
      console.log(
        `  ${name.padEnd(34)} heap ${kb((after.heapUsed - before.heapUsed) / clients)}/client, RSS ${kb((after.rss - before.rss) / clients)}/client`
      )
      for (const c of all) c.close()
      return (after.heapUsed - before.heapUsed) / clients
    }
    console.log(`connections: idle memory of the hub process per client, ${clients} clients`)
    const wsHeap = await perClient("WebSocket, holding events.subscribe", () =>
      subscribed<WebSocket>(
        (onText) => connectWs(wsUrl, onText),
        (ws, text) => ws.send(text)
      )
    )
    const tcpHeap = await perClient("TCP, holding events.subscribe", () =>
      subscribed<net.Socket>(
        (onText) => connectNet(ready.tcpPort, onText),
        (socket, text) => void socket.write(text + "\n")
      )
    )
    /** A connection that made one unary call and stays open (what a connection costs without a subscription). */
    const called = async (client: FrameClient) => {
      const reply = client.next(exitOf(1))
      client.send(whoami(0))
      await reply
      return client
    }
    await perClient("WebSocket, idle after user.whoami", () => connectWs(wsUrl).then(called))
    await perClient("TCP, idle after user.whoami", () => connectNet(ready.tcpPort).then(called))
    const rawHeap = await perClient("raw ws server, connection held", () => connectWs(`ws://127.0.0.1:${ready.rawWsPort}`))
    console.log(`  ratio to raw ws (heap): WebSocket ${(wsHeap / rawHeap).toFixed(1)}, TCP ${(tcpHeap / rawHeap).toFixed(1)}`)
    const final = await memory()
    console.log(`connections: hub process peak RSS ${mb(final.maxRss)}`)
  } finally {
    child.send({ type: "exit" } satisfies ToHub)
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
}

export default connectionRows

const hubDir = process.argv.indexOf("--connections-hub")
if (hubDir !== -1) runHubProcess(process.argv[hubDir + 1] ?? "")
else if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === here) {
  connectionRows().then(
    () => process.exit(0),
    (e) => {
      console.error(e)
      process.exit(1)
    }
  )
}
