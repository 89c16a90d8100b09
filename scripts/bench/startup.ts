/**
 * Start-up cost of the compiled CLI, each measurement in a fresh child process, repeated `--runs`
 * times (default 5), medians printed:
 *   1. `kiris --help`: wall time and peak RSS, against `node -e 0`;
 *   2. `kiris serve` (temp data dir, ports 0): wall time from spawn to the `kiris listening` line,
 *      and RSS once idle (`--settle-ms` after listening, default 1000), against a bare Node
 *      listener (http + ws + tcp, the same three listeners) in a child process.
 * Builds dist/ first (`npm run build`). Peak RSS is read from each child as it exits; idle RSS
 * from /proc (Linux) or `ps`. Usage:
 *   npm run bench -- startup [--runs 5] [--settle-ms 1000]
 */
import { Effect } from "effect"
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { flag } from "./_flags.js"
import { mb, peakRss, runBench } from "./_main.js"

const runs = Math.max(1, flag("runs", 5))
const settleMs = Math.max(0, flag("settle-ms", 1000))
const root = fileURLToPath(new URL("../..", import.meta.url))
const bin = path.join(root, "bin", "kiris.js")
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kiris-bench-startup-"))

/** Loaded with `--import` into every measured child: writes its peak RSS (bytes) to a file on exit. */
const reporter = path.join(dataDir, "peak-rss.mjs")
fs.writeFileSync(
  reporter,
  `import { writeFileSync } from "node:fs"
process.on("exit", () => { if (process.env.BENCH_PEAK_RSS) writeFileSync(process.env.BENCH_PEAK_RSS, String(process.resourceUsage().maxRSS * 1024)) })
`
)

/** The baseline listener: an HTTP server with a WebSocket endpoint and a TCP server, ports 0. */
const bareListener = `
import * as http from "node:http"
import * as net from "node:net"
import { WebSocketServer } from "ws"
const server = http.createServer((req, res) => res.end("ok"))
new WebSocketServer({ server })
const tcp = net.createServer((socket) => socket.pipe(socket))
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve))
await new Promise((resolve) => tcp.listen(0, "127.0.0.1", resolve))
console.log("bare listening http=" + server.address().port + " tcp=" + tcp.address().port)
const stop = () => { server.close(); tcp.close(); process.exit(0) }
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
`

interface Sample {
  readonly ms: number
  readonly peakRss: number
  readonly idleRss?: number
}

let counter = 0
const peakFile = () => path.join(dataDir, `peak-${++counter}`)

const childEnv = (peak: string) => ({
  ...process.env,
  NO_COLOR: "1",
  NODE_OPTIONS: `${process.env["NODE_OPTIONS"] ?? ""} --import ${pathToFileURL(reporter).href}`.trim(),
  BENCH_PEAK_RSS: peak
})

const readPeak = (file: string) => Number(fs.readFileSync(file, "utf8"))

/** Resident set size of a running process, in bytes. */
const rssOf = (pid: number): number => {
  const status = `/proc/${pid}/status`
  if (fs.existsSync(status)) {
    const m = fs.readFileSync(status, "utf8").match(/^VmRSS:\s+(\d+) kB$/m)
    if (m) return Number(m[1]) * 1024
  }
  return Number(execFileSync("ps", ["-o", "rss=", "-p", String(pid)], { encoding: "utf8" }).trim()) * 1024
}

/** Runs `node ...args` to completion: wall time and peak RSS. */
const runToExit = (args: ReadonlyArray<string>) =>
  Effect.async<Sample, Error>((resume) => {
    const peak = peakFile()
    const started = performance.now()
    const child = spawn(process.execPath, args, { cwd: dataDir, env: childEnv(peak), stdio: ["ignore", "ignore", "pipe"] })
    let stderr = ""
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    child.on("exit", (code) => {
      const ms = performance.now() - started
      if (code !== 0) return resume(Effect.fail(new Error(`node ${args.join(" ")} exited ${code}: ${stderr}`)))
      resume(Effect.sync(() => ({ ms, peakRss: readPeak(peak) })))
    })
  })

/** Spawns `node ...args` in `cwd` (the project's, for the baseline to find `ws`), times it to a stdout line matching `ready`, waits `settleMs`, reads its RSS, stops it. */
const runToReady = (args: ReadonlyArray<string>, ready: RegExp, cwd = dataDir) =>
  Effect.async<Sample, Error>((resume) => {
    const peak = peakFile()
    const started = performance.now()
    const child = spawn(process.execPath, args, { cwd, env: childEnv(peak), stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    let ms: number | undefined
    let idleRss: number | undefined
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d
      if (ms !== undefined || !stdout.split("\n").some((line) => ready.test(line))) return
      ms = performance.now() - started
      setTimeout(() => {
        idleRss = rssOf(child.pid!)
        child.kill("SIGTERM")
      }, settleMs)
    })
    child.on("exit", (code, signal) => {
      if (ms === undefined || idleRss === undefined) {
        return resume(Effect.fail(new Error(`node ${args.join(" ")} ended (${code ?? signal}) before ${ready}:\n${stdout}\n${stderr}`)))
      }
      const sample: Sample = { ms, peakRss: fs.existsSync(peak) ? readPeak(peak) : Number.NaN, idleRss }
      resume(Effect.succeed(sample))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const ms = (n: number) => `${Math.round(n)} ms`
const ratio = (a: number, b: number) => `${(a / b).toFixed(1)}x`

const summary = (samples: ReadonlyArray<Sample>) => ({
  ms: median(samples.map((s) => s.ms)),
  peakRss: median(samples.map((s) => s.peakRss)),
  idleRss: median(samples.map((s) => s.idleRss ?? Number.NaN))
})

const program = Effect.gen(function* () {
  yield* Effect.sync(() => execFileSync(process.execPath, [path.join(root, "scripts", "build.mjs"), "--quiet"], { stdio: "inherit" }))
  console.log(`startup: ${runs} run(s) each, medians; idle RSS ${settleMs} ms after listening`)

  // alternate the program and its baseline, so that a busy moment of the machine hits both
  const nodeRuns: Array<Sample> = []
  const helpRuns: Array<Sample> = []
  for (let i = 0; i < runs; i++) {
    nodeRuns.push(yield* runToExit(["-e", "0"]))
    helpRuns.push(yield* runToExit([bin, "--help"]))
  }
  const node = summary(nodeRuns)
  const help = summary(helpRuns)
  console.log(`node -e 0       ${ms(node.ms).padStart(8)}   peak RSS ${mb(node.peakRss)}`)
  console.log(
    `kiris --help    ${ms(help.ms).padStart(8)}   peak RSS ${mb(help.peakRss)}   (${ratio(help.ms, node.ms)} the time, ${ratio(help.peakRss, node.peakRss)} the memory of node -e 0)`
  )

  const bareRuns: Array<Sample> = []
  const serveRuns: Array<Sample> = []
  for (let i = 0; i < runs; i++) {
    bareRuns.push(yield* runToReady(["--input-type=module", "-e", bareListener], /^bare listening /, root))
    const dir = path.join(dataDir, `hub-${i}`)
    serveRuns.push(yield* runToReady([bin, "serve", "--data-dir", dir, "--port", "0", "--tcp-port", "0"], /^kiris listening /))
  }
  const bare = summary(bareRuns)
  const serve = summary(serveRuns)
  console.log(`bare listener   ${ms(bare.ms).padStart(8)} to listening   idle RSS ${mb(bare.idleRss)}   peak RSS ${mb(bare.peakRss)}`)
  console.log(
    `kiris serve     ${ms(serve.ms).padStart(8)} to listening   idle RSS ${mb(serve.idleRss)}   peak RSS ${mb(serve.peakRss)}   ` +
      `(${ratio(serve.ms, bare.ms)} the time, ${ratio(serve.idleRss, bare.idleRss)} the idle memory of the bare listener)`
  )
  console.log(`bench process ${peakRss()}`)
})

void runBench(program.pipe(Effect.orDie), dataDir)
