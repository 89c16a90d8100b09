/**
 * One abusive client must not exhaust the hub. Usage:
 *   npm run bench -- abuse [--tasks 2000] [--seconds 10] [--pipeline 150] [--samples 500] [--produce-ms 200]
 *
 * Starts a `kiris serve` process and seeds its queue with N tasks of ~4 KB payloads. Measures the
 * idle hub's RSS and a well-behaved client's `user.whoami` latency (sequential calls over TCP);
 * then, for S seconds, while the same client keeps measuring:
 *   - a viewer pipelines waves of P `task.list` calls (asking 1,000 tasks each; a page holds at most
 *     200, ~800 KB per reply) on one raw NDJSON connection,
 *   - a subscriber to `events.subscribe` never acks (and never reads) while events flow,
 *   - a producer (the admin, an ordinary workload) enqueues a batch of 200 tasks (~800 KB per
 *     event) every 200 ms (`--produce-ms`), so that events flow to the stalled subscriber.
 * The abuser and the producer speak the wire protocol directly and never decode their replies, so
 * the good client (an Effect RPC client in this process) measures the hub, not this process's load.
 * Prints the hub's RSS (idle, peak, end) and the good client's p50/p99, with ratios to the idle run.
 * Targets: peak RSS under 2x idle RSS, good client's p99 under 50 ms.
 */
import { Effect } from "effect"
import { spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { makeHubClient } from "../../src/client/HubClient.js"
import { EnqueueTask } from "../../src/domain/Task.js"
import { flag } from "./_flags.js"

const TASKS = flag("tasks", 2000)
const SECONDS = flag("seconds", 10)
const PIPELINE = flag("pipeline", 150)
const SAMPLES = flag("samples", 500)
/** How often the producer (an ordinary admin workload that makes events flow) enqueues a 200-task batch. */
const PRODUCE_MS = flag("produce-ms", 200)
const RSS_TARGET_RATIO = 2
const P99_TARGET_MS = 50

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
const bin = path.join(root, "bin", "kiris.js")
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "kiris-bench-abuse-"))

const percentile = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
const procStatus = (pid: number, field: "VmRSS" | "VmHWM") => {
  const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`${field}:\\s+(\\d+) kB`))
  return m ? Number(m[1]) / 1024 : NaN
}
const payload = (i: number) => ({ i, text: `${i}:`.padEnd(4096, "abcdefghijklmnopqrstuvwxyz"[i % 26]) })

let hub: ChildProcess | undefined

const startHub = Effect.async<{ readonly pid: number; readonly port: number }, Error>((resume) => {
  const child = spawn(process.execPath, [bin, "serve", "--port", "0", "--tcp-port", "0", "--data-dir", path.join(tmp, "hub")], {
    cwd: tmp,
    stdio: ["ignore", "pipe", "inherit"]
  })
  hub = child
  let out = ""
  child.stdout!.on("data", (d: Buffer) => {
    out = (out + d.toString()).slice(-10_000)
    const m = out.match(/tcp=[\d.]+:(\d+)/)
    if (m) resume(Effect.succeed({ pid: child.pid!, port: Number(m[1]) }))
  })
  child.once("exit", (code) => resume(Effect.fail(new Error(`the hub exited (${code}) before listening:\n${out}`))))
})

/**
 * A raw NDJSON connection that sends requests and counts their `Exit`s without decoding them (it
 * acks every chunk, so streams keep flowing). `call` resolves with the Exit line's first bytes.
 */
const rawClient = (port: number) =>
  Effect.acquireRelease(
    Effect.async<net.Socket>((resume) => {
      const socket: net.Socket = net.connect({ host: "127.0.0.1", port }, () => resume(Effect.succeed(socket)))
      socket.on("error", () => {})
    }),
    (socket) => Effect.sync(() => socket.destroy())
  ).pipe(
    Effect.map((socket) => {
      const waiting = new Map<string, (head: string) => void>()
      // Only the first bytes of each line are kept: the rest is skipped up to its newline.
      let head = ""
      let nextId = 0
      const onLine = () => {
        const id = head.match(/"requestId":"(\d+)"/)?.[1]
        if (id === undefined) return
        if (head.startsWith('{"_tag":"Chunk"')) socket.write(JSON.stringify({ _tag: "Ack", requestId: id }) + "\n")
        else waiting.get(id)?.(head)
      }
      socket.setEncoding("utf8")
      socket.on("data", (data: string) => {
        let start = 0
        for (let nl = data.indexOf("\n"); nl !== -1; nl = data.indexOf("\n", start)) {
          if (head.length < 300) head += data.slice(start, Math.min(nl, start + 300 - head.length))
          onLine()
          head = ""
          start = nl + 1
        }
        if (head.length < 300) head += data.slice(start, Math.min(data.length, start + 300 - head.length))
      })
      const call = (tag: string, payload: unknown, token: string) =>
        Effect.async<string>((resume) => {
          const id = String(++nextId)
          waiting.set(id, (head) => {
            waiting.delete(id)
            resume(Effect.succeed(head))
          })
          socket.write(JSON.stringify({ _tag: "Request", id, tag, payload, headers: [["authorization", `Bearer ${token}`]] }) + "\n")
        })
      return { call }
    })
  )

/** A subscriber that asks for events and then neither acks nor reads. */
const stalledSubscriber = (port: number, token: string, projectId: string) =>
  Effect.acquireRelease(
    Effect.async<net.Socket>((resume) => {
      const socket: net.Socket = net.connect({ host: "127.0.0.1", port }, () => {
        socket.pause()
        socket.write(
          JSON.stringify({
            _tag: "Request",
            id: "1",
            tag: "events.subscribe",
            payload: { projectId },
            headers: [["authorization", `Bearer ${token}`]]
          }) + "\n"
        )
        resume(Effect.succeed(socket))
      })
      socket.on("error", () => {})
    }),
    (socket) => Effect.sync(() => socket.destroy())
  )

const measureWhoami = (client: Effect.Effect.Success<ReturnType<typeof makeHubClient>>, until: () => boolean) =>
  Effect.gen(function* () {
    const latencies: Array<number> = []
    while (!until()) {
      const started = performance.now()
      yield* client.user.whoami()
      latencies.push(performance.now() - started)
    }
    return latencies.sort((a, b) => a - b)
  })

const program = Effect.gen(function* () {
  const { pid, port } = yield* startHub
  const adminKey = fs.readFileSync(path.join(tmp, "hub", "admin.key"), "utf8").trim()
  const target = { transport: "tcp" as const, host: "127.0.0.1", port }
  const admin = yield* makeHubClient(target, adminKey)
  const project = yield* admin.project.create({ name: "abuse" })
  for (let sent = 0; sent < TASKS; sent += 200) {
    const n = Math.min(200, TASKS - sent)
    yield* admin.task.enqueueBatch({
      tasks: Array.from({ length: n }, (_, i) => EnqueueTask.make({ projectId: project.id, kind: "human", payload: payload(sent + i) }))
    })
  }
  const viewer = yield* admin.user.create({ name: "viewer", password: "viewer-password", isAdmin: false })
  yield* admin.project.addMember({ projectId: project.id, user: "viewer", role: "viewer" })
  const viewerKey = (yield* admin.key.create({ name: "viewer key", scopes: ["read"], userId: viewer.id })).key

  // == baseline: the idle hub
  const good = yield* makeHubClient(target, adminKey)
  let baselineCalls = 0
  const baseline = yield* measureWhoami(good, () => baselineCalls++ >= SAMPLES)
  const idleRss = procStatus(pid, "VmRSS")

  // == under abuse
  const deadline = Date.now() + SECONDS * 1000
  const over = () => Date.now() >= deadline
  let peakRss = idleRss
  const sampler = yield* Effect.fork(
    Effect.gen(function* () {
      while (!over()) {
        peakRss = Math.max(peakRss, procStatus(pid, "VmRSS"))
        yield* Effect.sleep("50 millis")
      }
    })
  )

  const abuser = yield* rawClient(port)
  const listed = { ok: 0, refused: 0, failed: 0 }
  const abuse = Effect.gen(function* () {
    while (!over()) {
      const heads = yield* Effect.all(
        Array.from({ length: PIPELINE }, () => abuser.call("task.list", { projectId: project.id, limit: 1000 }, viewerKey)),
        { concurrency: "unbounded" }
      )
      for (const head of heads) {
        if (head.includes('"exit":{"_tag":"Success"')) listed.ok++
        else if (head.includes("too many requests in flight")) listed.refused++
        else listed.failed++
      }
    }
  })

  yield* stalledSubscriber(port, adminKey, project.id)
  let produced = 0
  const producer = yield* rawClient(port)
  const produce = Effect.gen(function* () {
    while (!over()) {
      yield* producer.call(
        "task.enqueueBatch",
        { tasks: Array.from({ length: 200 }, (_, i) => ({ projectId: project.id, kind: "human", payload: payload(TASKS + produced * 200 + i) })) },
        adminKey
      )
      produced++
      yield* Effect.sleep(PRODUCE_MS)
    }
  })

  const [underAbuse] = yield* Effect.all([measureWhoami(good, over), abuse, produce], { concurrency: "unbounded" })
  yield* sampler.await
  const endRss = procStatus(pid, "VmRSS")
  const hwm = procStatus(pid, "VmHWM")
  return { idleRss, peakRss: Math.max(peakRss, endRss), hwm, endRss, baseline, underAbuse, listed, produced }
}).pipe(Effect.scoped)

const main = async () => {
  console.log(
    `abuse benchmark: ${fmt(TASKS)} seeded tasks of ~4 KB; ${SECONDS} s of abuse (task.list waves of ${PIPELINE}, a stalled subscriber, 200-task batches every ${PRODUCE_MS} ms); ${os.cpus().length} CPUs`
  )
  const r = await Effect.runPromise(program)
  const p = (xs: ReadonlyArray<number>, q: number) => fmt(percentile(xs, q), 1)
  console.log(
    `idle hub:        RSS ${fmt(r.idleRss, 1)} MiB; good client user.whoami p50 ${p(r.baseline, 50)} ms, p99 ${p(r.baseline, 99)} ms (${r.baseline.length} calls)`
  )
  console.log(
    `under abuse:     RSS peak ${fmt(r.peakRss, 1)} MiB (${fmt(r.peakRss / r.idleRss, 2)}x idle; VmHWM ${fmt(r.hwm, 1)} MiB), end ${fmt(r.endRss, 1)} MiB (${fmt(r.endRss / r.idleRss, 2)}x idle)`
  )
  const p99 = percentile(r.underAbuse, 99)
  console.log(
    `                 good client user.whoami p50 ${p(r.underAbuse, 50)} ms, p99 ${p(r.underAbuse, 99)} ms (${fmt(p99 / percentile(r.baseline, 99), 1)}x idle p99; ${r.underAbuse.length} calls)`
  )
  console.log(
    `                 abuser task.list: ${fmt(r.listed.ok)} answered, ${fmt(r.listed.refused)} refused (in-flight limit), ${fmt(r.listed.failed)} failed otherwise; ${fmt(r.produced)} event batches produced`
  )
  const rssOk = r.peakRss < RSS_TARGET_RATIO * r.idleRss
  const p99Ok = p99 < P99_TARGET_MS
  console.log(
    `targets:         peak RSS < ${RSS_TARGET_RATIO}x idle: ${rssOk ? "met" : "MISSED"}; good p99 < ${P99_TARGET_MS} ms: ${p99Ok ? "met" : "MISSED"}`
  )
}

try {
  await main()
} finally {
  if (hub !== undefined && hub.exitCode === null && hub.signalCode === null) {
    const exited = new Promise((r) => hub!.once("exit", r))
    hub.kill("SIGTERM")
    await exited
  }
  fs.rmSync(tmp, { recursive: true, force: true })
}
