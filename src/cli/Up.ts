import { Command, Options } from "@effect/cli"
import { SocketServer } from "@effect/platform"
import { Clock, Console, Context, Data, Deferred, Duration, Effect, Exit, Layer, Option, Schedule } from "effect"
import { spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { makeHubClient } from "../client/HubClient.js"
import { configProvider, withConfigSources } from "../config/ConfigSources.js"
import { ServerConfig } from "../config/ServerConfig.js"
import type { TaskStats } from "../domain/Task.js"
import { type LogFormat, withLogFormat } from "../runtime/Logging.js"
import { logFormatOptions, resolveLogFormat } from "./LogFormatOption.js"
import { hubFlags, hubOptions, hubSettings, loadHub, reportConfigInvalid, reportStartFailure } from "./Serve.js"
import { WORKER_KEY_FILE } from "./Worker.js"

/**
 * `kiris up`: the hub in this process plus N local `kiris worker` child processes (restarted if
 * they die), with a live status line; Ctrl-C stops the workers, then the hub.
 */

/** This installation's bin/kiris.js: the nearest one above this module (src/cli/ or dist/chunks/). */
const findBin = (): string => {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const candidate = path.join(dir, "bin", "kiris.js")
    if (fs.existsSync(candidate)) return candidate
    const parent = path.dirname(dir)
    if (parent === dir) throw new Error(`kiris: no bin/kiris.js above ${fileURLToPath(import.meta.url)}`)
    dir = parent
  }
}
const binPath = findBin()

const upOptions = {
  ...hubOptions,
  workers: Options.integer("workers").pipe(Options.withDescription("Local worker processes"), Options.withDefault(2)),
  concurrency: Options.integer("concurrency").pipe(Options.withDescription("Tasks each worker runs at once"), Options.withDefault(4)),
  trustShell: Options.boolean("trust-shell").pipe(Options.withDescription("Let the local workers run shell and python tasks (arbitrary code)")),
  ...logFormatOptions
}

/** The key the local workers use: created once, kept in the data dir (mode 0600), re-created if revoked. */
const localWorkerKey = (dataDir: string) =>
  Effect.gen(function* () {
    const [{ ApiKeys }, { Users }] = yield* Effect.promise(() => Promise.all([import("../auth/ApiKeys.js"), import("../auth/Users.js")]))
    const keys = yield* ApiKeys
    const users = yield* Users
    const file = path.join(dataDir, WORKER_KEY_FILE)
    const existing = yield* Effect.sync(() => (fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim() : ""))
    if (existing !== "") {
      const ok = yield* keys.authenticate(`Bearer ${existing}`).pipe(
        Effect.map((p) => p.kind === "worker"),
        Effect.orElseSucceed(() => false)
      )
      if (ok) return existing
    }
    const admin = yield* users.byName("admin").pipe(Effect.orDie)
    if (Option.isNone(admin)) return yield* Effect.dieMessage("no admin user to own the local worker key")
    const created = yield* keys.mint(admin.value.user.id, "local workers (kiris up)", ["worker"], "worker")
    yield* Effect.sync(() => fs.writeFileSync(file, created.key + "\n", { mode: 0o600 }))
    return created.key
  })

/** A worker child that died soon after it started (less than a minute): restarts back off. */
class DiedQuickly extends Data.TaggedError("DiedQuickly")<{}> {}

const RESTART_FIRST_DELAY = Duration.seconds(1)
/** Restart delays while a worker keeps dying soon after it starts: 1 s doubling up to 30 s. */
const restartBackoff = Schedule.exponential(RESTART_FIRST_DELAY).pipe(Schedule.union(Schedule.spaced(Duration.seconds(30))))

interface WorkerProcess {
  readonly child: ChildProcess
  readonly exited: Deferred.Deferred<number | null>
}

/**
 * One worker child, kept running: restarted with a growing delay when it dies (exits non-zero or by
 * a signal); one that exits 0 (drained with `kiris workers drain`, or stopped with SIGTERM) is not.
 */
const supervise = (index: number, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv, logFile: string | undefined, format: LogFormat) => {
  const name = `worker-${index}`
  const start = Effect.gen(function* () {
    const exited = yield* Deferred.make<number | null>()
    const out = logFile === undefined ? "pipe" : fs.openSync(logFile, "a")
    const child = spawn(process.execPath, [binPath, "worker", ...args, "--name", `local-${index}`], {
      env,
      stdio: ["pipe", out, out],
      // its own session: a terminal's Ctrl-C reaches only `up`, which stops the workers in order
      detached: true
    })
    if (typeof out === "number") fs.closeSync(out)
    child.on("exit", (code) => Deferred.unsafeDone(exited, Exit.succeed(code)))
    child.on("error", () => Deferred.unsafeDone(exited, Exit.succeed(null)))
    for (const stream of [child.stdout, child.stderr]) {
      // JSON lines pass unchanged, so that the output stays one JSON object per line
      if (stream)
        createInterface({ input: stream }).on("line", (line) => process.stdout.write(format === "json" ? `${line}\n` : `[${name}] ${line}\n`))
    }
    return { child, exited } satisfies WorkerProcess
  })
  const stop = (w: WorkerProcess) =>
    Effect.gen(function* () {
      if (Option.isSome(yield* Deferred.poll(w.exited))) return
      w.child.kill("SIGTERM")
      const code = yield* Deferred.await(w.exited).pipe(Effect.timeout(Duration.seconds(40)), Effect.option)
      if (Option.isNone(code)) w.child.kill("SIGKILL")
    })
  /**
   * One run of the worker. Exit 0 is a deliberate stop (a drain, a SIGTERM): the worker stays
   * stopped. A death after a long run restarts it after the first delay; a quick one fails, so that
   * the restart backoff grows.
   */
  const run = Effect.gen(function* () {
    const startedAt = yield* Clock.currentTimeMillis
    const code = yield* Effect.acquireUseRelease(start, (w) => Deferred.await(w.exited), stop)
    if (code === 0) return yield* Console.error(`${name} exited (code 0); not restarted`).pipe(Effect.as(false))
    const ranMs = (yield* Clock.currentTimeMillis) - startedAt
    yield* Console.error(`${name} exited (code ${code ?? "?"}); restarting`)
    if (ranMs > 60_000) return true
    return yield* new DiedQuickly()
  })
  const backoff = restartBackoff.pipe(Schedule.tapOutput(([delay]) => Console.error(`${name}: next start in ${Duration.format(delay)}`)))
  return run.pipe(
    Effect.retry(backoff),
    Effect.repeat({ while: (again) => again, schedule: Schedule.spaced(RESTART_FIRST_DELAY) }),
    Effect.catchTag("DiedQuickly", () => Effect.void),
    Effect.asVoid
  )
}

const statusLine = (s: TaskStats, workers: number) =>
  `queued ${s.queued + s.waiting} · input required ${s.input_required} · running ${s.leased} · done ${s.done} · failed ${s.failed + s.dead} · cancelled ${s.cancelled} · workers ${s.workers}/${workers}`

/** Refreshes the status from `task.stats`: redrawn in place on a terminal, a plain line per change otherwise. */
const showStatus = (host: string, tcpPort: number, adminKey: string, workers: number) =>
  Effect.gen(function* () {
    const client = yield* makeHubClient({ transport: "tcp", host, port: tcpPort }, adminKey)
    const tty = process.stdout.isTTY === true
    let last = ""
    const refresh = Effect.gen(function* () {
      const stats = yield* Effect.either(client.task.stats({}))
      if (stats._tag === "Right") {
        const line = statusLine(stats.right, workers)
        // a plain line per change goes through the Console: a JSON object in JSON mode
        if (line !== last) yield* tty ? Effect.sync(() => process.stdout.write(`\r\x1b[2K${line}`)) : Console.log(line)
        last = line
      }
    })
    return yield* Effect.repeat(refresh, Schedule.spaced(tty ? "250 millis" : "1 second"))
  }).pipe(Effect.scoped, Effect.ensuring(Effect.sync(() => (process.stdout.isTTY ? process.stdout.write("\n") : undefined))))

type UpFlags = Command.Command.ParseConfig<typeof upOptions>

const runUp = (o: UpFlags, flags: Record<string, string | undefined>, format: LogFormat) =>
  Effect.gen(function* () {
    const { HubLayer } = yield* loadHub
    const context = yield* Layer.build(HubLayer.pipe(Layer.provideMerge(ServerConfig.layer))).pipe(
      Effect.withConfigProvider(configProvider(flags)),
      reportStartFailure
    )
    const config = Context.get(context, ServerConfig)
    const tcp = Context.get(context, SocketServer.SocketServer).address as SocketServer.TcpAddress
    const key = yield* localWorkerKey(config.dataDir).pipe(Effect.provide(context))
    const adminKey = yield* Effect.option(Effect.try(() => fs.readFileSync(path.join(config.dataDir, "admin.key"), "utf8").trim()))
    const tty = process.stdout.isTTY === true
    const logDir = path.join(config.dataDir, "logs")
    if (tty) fs.mkdirSync(logDir, { recursive: true })
    const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host
    const hub = `${host}:${tcp.port}`
    const args = [
      "--hub",
      hub,
      "--data-dir",
      config.dataDir,
      "--concurrency",
      String(o.concurrency),
      "--grace-seconds",
      "10",
      "--stop-on-stdin-end",
      ...(o.trustShell ? ["--trust-shell"] : []),
      // the workers log in the hub's format
      ...(format === "json" ? ["--log-format", "json"] : [])
    ]
    const env = { ...process.env, KIRIS_TOKEN: key, KIRIS_HUB: hub }
    yield* Console.log(
      `kiris up: ${o.workers} local worker(s)${o.trustShell ? " trusting shell/python" : " (shell/python refused: add --trust-shell to run them)"}` +
        (tty ? `, logs in ${logDir}` : "")
    )
    // The hint runs on these workers as started: a shell task only when they trust shell.
    const example = o.trustShell ? `kiris enqueue --kind shell --wait "echo hi"` : `kiris enqueue --kind noop --wait "hello"`
    yield* Console.log(`try: npx ${example}    (Ctrl-C stops everything)`)
    // one fiber for all, so Ctrl-C stops them in parallel
    const indexes = Array.from({ length: o.workers }, (_, i) => i + 1)
    yield* Effect.forkScoped(
      Effect.forEach(indexes, (i) => supervise(i, args, env, tty ? path.join(logDir, `worker-${i}.log`) : undefined, format), {
        concurrency: "unbounded",
        discard: true
      })
    )
    if (Option.isSome(adminKey)) yield* Effect.forkScoped(showStatus(host, tcp.port, adminKey.value, o.workers))
    return yield* Effect.never
  }).pipe(Effect.scoped)

export const upCommand = Command.make("up", upOptions, (o) =>
  Effect.gen(function* () {
    const flags = hubFlags(
      { dataDir: o.dataDir, databaseUrl: o.databaseUrl, host: o.host, port: o.port, tcpPort: o.tcpPort },
      { logFormat: o.logFormat }
    )
    const format = yield* resolveLogFormat.pipe(withConfigSources(flags, hubSettings))
    return yield* runUp(o, flags, format).pipe(withLogFormat(format))
  }).pipe(reportConfigInvalid)
).pipe(Command.withDescription("Run the hub and local workers in one command (the quick start)"))
