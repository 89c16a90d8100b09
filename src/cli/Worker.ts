import { Command, Options } from "@effect/cli"
import { Config, Console, Effect, Layer, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type HubTarget, makeFailoverHubClient, parseHubs, showHub } from "../client/HubClient.js"
import { describeConfigError } from "../config/ConfigErrors.js"
import { withConfigSources } from "../config/ConfigSources.js"
import { TaskKind } from "../domain/Task.js"
import { logFormatConfig } from "../runtime/Logging.js"
import { executableKinds } from "../worker/ExecutableKinds.js"
import { WorkerConfig } from "../worker/WorkerConfig.js"
import { CliError, CommandFailed, resolveHub } from "./ClientOptions.js"
import { logFormatOptions, withConfiguredLogFormat } from "./LogFormatOption.js"

/** `kiris worker`: a swarm worker process connected to a hub's TCP NDJSON port. */

export const WORKER_KEY_FILE = "worker.key"

const workerOptions = {
  hub: Options.text("hub").pipe(
    Options.withDescription(
      "Hub address host:port, or several separated by commas (hubs sharing one database): the worker connects to the first that answers and, when it loses that hub, to the next, keeping its running tasks (default $KIRIS_HUB, else 127.0.0.1:7421)"
    ),
    Options.optional
  ),
  token: Options.redacted("token").pipe(
    Options.withDescription("Worker key (default $KIRIS_TOKEN, else <data-dir>/worker.key as written by `kiris up`)"),
    Options.optional
  ),
  name: Options.text("name").pipe(Options.withDescription("Name shown by `kiris workers` (default host-pid)"), Options.optional),
  kinds: Options.text("kinds").pipe(
    Options.withDescription(`Comma-separated task kinds to run (default ${executableKinds.join(",")})`),
    Options.optional
  ),
  concurrency: Options.integer("concurrency").pipe(Options.withDescription("Tasks run at once"), Options.withDefault(4)),
  trustShell: Options.boolean("trust-shell").pipe(
    Options.withDescription("Run shell and python tasks (arbitrary code on this machine) and custom CLI templates")
  ),
  dataDir: Options.text("data-dir").pipe(
    Options.withDescription("Directory for isolated workdirs and worktrees (default $KIRIS_DATA_DIR, else dataDir in a config file, else ./.kiris)"),
    Options.optional
  ),
  leaseSeconds: Options.integer("lease-seconds").pipe(
    Options.withDescription("Lease length asked of the hub (default: the hub's)"),
    Options.optional
  ),
  workdir: Options.text("workdir").pipe(
    Options.withDescription("Shared directory for tasks that name no workdir (default: a fresh isolated directory per task)"),
    Options.optional
  ),
  graceSeconds: Options.integer("grace-seconds").pipe(
    Options.withDescription(
      "On SIGTERM/SIGINT, how long running tasks may finish before they are released for retry (a drain requested with `kiris workers drain` has no limit)"
    ),
    Options.withDefault(30)
  ),
  maxOutputBytes: Options.integer("max-output-bytes").pipe(
    Options.withDescription("Output kept per stream of a command (head and tail beyond it)"),
    Options.withDefault(256 * 1024)
  ),
  quiet: Options.boolean("quiet").pipe(Options.withDescription("No line per task")),
  stopOnStdinEnd: Options.boolean("stop-on-stdin-end").pipe(
    Options.withDescription("Stop (gracefully) when standard input closes, e.g. when a supervising process exits")
  ),
  ...logFormatOptions
}

type WorkerFlags = Command.Command.ParseConfig<typeof workerOptions>

const parseKinds = (given: Option.Option<string>) =>
  Option.match(given, {
    onNone: () => Effect.succeed(executableKinds),
    onSome: (text) => {
      const kinds = text
        .split(",")
        .map((k) => k.trim())
        .filter((k) => k !== "")
      const bad = kinds.filter((k) => !(TaskKind.literals as ReadonlyArray<string>).includes(k))
      return bad.length > 0 || kinds.length === 0
        ? Effect.fail(new CliError({ message: `--kinds: unknown kind ${bad.join(", ") || "(none)"}; use ${TaskKind.literals.join(", ")}` }))
        : Effect.succeed(kinds as ReadonlyArray<TaskKind>)
    }
  })

/** The addresses of `--hub` (or `KIRIS_HUB`): one or more, all `host:port` or all WebSocket URLs. */
const parseHubList = (text: string): Effect.Effect<ReadonlyArray<HubTarget>, CliError> => {
  const targets = parseHubs(text)
  if (targets.length === 0) return Effect.fail(new CliError({ message: "--hub: no hub address given" }))
  if (new Set(targets.map((t) => t.transport)).size > 1) {
    return Effect.fail(new CliError({ message: "--hub: give either host:port addresses or WebSocket URLs, not both" }))
  }
  return Effect.succeed(targets)
}

/** `--data-dir`, else `dataDir` from the config sources (`KIRIS_DATA_DIR`, then the config files), else `./.kiris`. */
const resolveDataDirConfig = Config.string("dataDir").pipe(Config.withDefault(".kiris"))
const resolveDataDir = resolveDataDirConfig.pipe(
  Effect.mapError((e) => new CliError({ message: describeConfigError(e).join("; ") })),
  Effect.map((d) => path.resolve(d))
)

const resolveWorkerToken = (given: Option.Option<Redacted.Redacted<string>>, dataDir: string) =>
  Effect.gen(function* () {
    if (Option.isSome(given)) return Redacted.value(given.value)
    const env = yield* Config.option(Config.string("KIRIS_TOKEN")).pipe(Effect.orElseSucceed(() => Option.none<string>()))
    if (Option.isSome(env) && env.value.trim() !== "") return env.value.trim()
    const file = path.join(dataDir, WORKER_KEY_FILE)
    const content = yield* Effect.option(Effect.try(() => fs.readFileSync(file, "utf8").trim()))
    if (Option.isSome(content) && content.value !== "") return content.value
    return yield* new CliError({
      message: `no worker key: pass --token <key> or set KIRIS_TOKEN (create one with \`kiris key create NAME --scope worker\`), or run where \`kiris up\` wrote ${file}`
    })
  })

/** Resolves when standard input ends (never, when it is a terminal). */
const stdinEnded = Effect.async<void>((resume) => {
  if (process.stdin.isTTY) return
  const done = () => resume(Effect.void)
  process.stdin.on("end", done).on("close", done).on("error", done)
  process.stdin.resume()
  // when the worker ends first (a drain), standard input must not keep the process alive
  return Effect.sync(() => {
    process.stdin.off("end", done).off("close", done).off("error", done)
    process.stdin.pause()
    process.stdin.unref?.()
  })
})

/**
 * After the worker has stopped on its own (a drain): exit 0 once the event loop is empty, or after
 * a second at the latest (an idle keep-alive connection of a model client must not hold it up).
 */
const exitSoon = Effect.sync(() => {
  setTimeout(() => process.exit(0), 1000).unref()
})

/** The child environment: the worker's own, without its hub credentials. */
const childEnv = () => {
  const env: Record<string, string | undefined> = { ...process.env }
  delete env["KIRIS_TOKEN"]
  return env
}

/** What the worker reads from its config sources, checked before it starts (a problem is a one-line error). */
const workerSettings = Config.all([resolveDataDirConfig, logFormatConfig])

/**
 * Runs the worker. Its settings (model providers, `KIRIS_*_BIN`, the data dir, the hub address) come
 * from the same sources, in the same order, as the hub's: flags, then the environment, then
 * `./.kiris/config.json`, then `~/.kiris/config.json`. Ends (exit 0) when the hub asks it to drain
 * and its running tasks are done, or on SIGTERM/SIGINT after at most `--grace-seconds`.
 */
export const runWorkerCommand = (o: WorkerFlags) =>
  Effect.gen(function* () {
    const hubs = yield* Effect.flatMap(resolveHub(o), parseHubList)
    const dataDir = yield* resolveDataDir
    const kinds = yield* parseKinds(o.kinds)
    const token = yield* resolveWorkerToken(o.token, dataDir)
    if (o.concurrency < 1) return yield* new CliError({ message: "--concurrency must be at least 1" })
    const name = Option.getOrElse(o.name, () => `${os.hostname()}-${process.pid}`)
    const config = WorkerConfig.layer({
      dataDir,
      trustShell: o.trustShell,
      defaultWorkdir: Option.getOrUndefined(Option.map(o.workdir, (d) => path.resolve(d))),
      maxOutputBytes: o.maxOutputBytes,
      childEnv: childEnv()
    })
    // the executors (and with them the AI SDK and SQLite) load only when a worker runs
    const [{ Models }, { Executors }, { runWorker }] = yield* Effect.promise(() =>
      Promise.all([import("../llm/Models.js"), import("../worker/Executors.js"), import("../worker/Worker.js")])
    )
    const services = Executors.Default.pipe(Layer.provide(config), Layer.provide(Models.Default))
    yield* Console.log(
      `kiris worker ${name}: ${hubs.length === 1 ? "hub" : "hubs"} ${hubs.map(showHub).join(", ")}, kinds ${kinds.join(",")}, concurrency ${o.concurrency}${o.trustShell ? ", trusts shell" : ""}`
    )
    const work = Effect.scoped(
      Effect.gen(function* () {
        const { client, failover } = yield* makeFailoverHubClient(hubs, token)
        return yield* runWorker(client, {
          name,
          ...(hubs.length > 1
            ? { connectedTo: () => Option.map(Option.fromNullable(failover.connectedTo()), showHub).pipe(Option.getOrUndefined) }
            : {}),
          kinds,
          concurrency: o.concurrency,
          leaseSeconds: Option.getOrUndefined(o.leaseSeconds),
          graceMs: o.graceSeconds * 1000,
          quiet: o.quiet
        })
      })
    ).pipe(Effect.provide(services))
    yield* o.stopOnStdinEnd ? Effect.raceFirst(work, stdinEnded) : work
    yield* exitSoon
  }).pipe(
    withConfiguredLogFormat,
    withConfigSources({ dataDir: Option.getOrUndefined(o.dataDir), logFormat: Option.getOrUndefined(o.logFormat) }, workerSettings),
    Effect.catchTags({
      CliError: (e) => Console.error(`error: ${e.message}`).pipe(Effect.zipRight(new CommandFailed())),
      ConfigInvalid: (e) => Effect.forEach(e.lines, (line) => Console.error(`error: ${line}`)).pipe(Effect.zipRight(new CommandFailed())),
      WorkerRejected: (e) => Console.error(`error: ${e.message}`).pipe(Effect.zipRight(new CommandFailed()))
    })
  )

export const workerCommand = Command.make("worker", workerOptions, runWorkerCommand).pipe(
  Command.withDescription("Run a swarm worker: lease tasks from the hub and run them (chat, cli, shell, python, noop)")
)
