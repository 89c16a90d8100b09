/**
 * The BullMQ row of the queue benchmark: a private `redis-server` (no persistence) on a free port in
 * a temp dir, W worker processes each running a BullMQ Worker with concurrency C and a no-op
 * processor, and this process adding N jobs with `addBulk` in batches of B (4 batches in flight, as
 * the Kiris client does). Returns undefined, with the reason, when `redis-server` is not installed.
 */
import { Queue } from "bullmq"
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export interface BullmqResult {
  readonly rate: number
  readonly seconds: number
  /** Peak RSS (MiB) of redis-server and of the largest worker process. */
  readonly redisRssMb: number
  readonly workerRssMb: number
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")

/** Peak resident set (VmHWM) of a live process, in MiB. */
export const peakRssOf = (pid: number | undefined): number => {
  if (pid === undefined) return NaN
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/VmHWM:\s+(\d+) kB/)
    return m ? Number(m[1]) / 1024 : NaN
  } catch {
    return NaN
  }
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))))
    })
  })

/** Resolves once `child` printed a line matching `pattern`; rejects if it exits first. */
export const waitForLine = (child: ChildProcess, pattern: RegExp, what: string) =>
  new Promise<void>((resolve, reject) => {
    let out = ""
    const onData = (d: Buffer) => {
      out = (out + d.toString()).slice(-10_000)
      if (pattern.test(out)) {
        child.stdout!.off("data", onData)
        resolve()
      }
    }
    child.stdout!.on("data", onData)
    child.once("exit", (code) => reject(new Error(`${what} exited (${code}) before it was ready:\n${out}`)))
  })

/** A BullMQ worker process: concurrency C, a processor that returns at once. */
const WORKER_SOURCE = `
const { Worker } = require(process.argv[1])
const worker = new Worker(process.argv[2], async () => ({}), {
  connection: { host: "127.0.0.1", port: Number(process.argv[3]) },
  concurrency: Number(process.argv[4])
})
worker.on("error", (e) => console.error(e))
worker.waitUntilReady().then(() => console.log("ready"))
process.on("SIGTERM", () => worker.close().then(() => process.exit(0)))
`

export const installHint =
  "install redis-server (Debian/Ubuntu: `apt-get install -y redis-server`; macOS: `brew install redis`) to add the BullMQ row"

export const redisInstalled = () => spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0

export const runBullmq = async (opts: { tasks: number; workers: number; concurrency: number; batch: number; tmp: string }): Promise<BullmqResult> => {
  const children: Array<ChildProcess> = []
  const dir = fs.mkdtempSync(path.join(opts.tmp, "redis-"))
  try {
    const port = await freePort()
    const redis = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--maxmemory-policy", "noeviction"],
      { stdio: ["ignore", "pipe", "inherit"] }
    )
    children.push(redis)
    await waitForLine(redis, /Ready to accept connections/, "redis-server")
    const connection = { host: "127.0.0.1", port }
    const name = "bench"
    const bullmqMain = path.join(root, "node_modules", "bullmq")
    const workers = Array.from({ length: opts.workers }, () => {
      const child = spawn(process.execPath, ["-e", WORKER_SOURCE, bullmqMain, name, String(port), String(opts.concurrency)], {
        stdio: ["ignore", "pipe", "inherit"]
      })
      children.push(child)
      return child
    })
    await Promise.all(workers.map((w) => waitForLine(w, /ready/, "bullmq worker")))
    const queue = new Queue(name, { connection })
    try {
      const started = performance.now()
      const batches = Array.from({ length: Math.ceil(opts.tasks / opts.batch) }, (_, b) =>
        Array.from({ length: Math.min(opts.batch, opts.tasks - b * opts.batch) }, (_, i) => ({ name: "noop", data: { i: b * opts.batch + i } }))
      )
      let next = 0
      const adders = Array.from({ length: 4 }, async () => {
        while (next < batches.length) await queue.addBulk(batches[next++]!)
      })
      const adding = Promise.all(adders)
      for (;;) {
        const counts = await queue.getJobCounts("completed", "failed")
        if ((counts.failed ?? 0) > 0) throw new Error(`${counts.failed} BullMQ jobs failed`)
        if ((counts.completed ?? 0) >= opts.tasks) break
        await new Promise((r) => setTimeout(r, 20))
      }
      await adding
      const seconds = (performance.now() - started) / 1000
      return {
        rate: opts.tasks / seconds,
        seconds,
        redisRssMb: peakRssOf(redis.pid),
        workerRssMb: Math.max(...workers.map((w) => peakRssOf(w.pid)))
      }
    } finally {
      await queue.close()
    }
  } finally {
    for (const c of children.reverse()) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM")
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once("exit", r)))))
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
