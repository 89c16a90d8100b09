import { Command, Options } from "@effect/cli"
import { Cause, Config, Console, Context, Effect, Layer, Option } from "effect"
import * as ConfigError from "effect/ConfigError"
import { ConfigInvalid, describeConfigError } from "../config/ConfigErrors.js"
import { withConfigSources } from "../config/ConfigSources.js"
import { ServerConfig } from "../config/ServerConfig.js"
import { logFormatConfig } from "../runtime/Logging.js"
import { CommandFailed } from "./ClientOptions.js"
import { logFormatOptions, withConfiguredLogFormat } from "./LogFormatOption.js"

export const hubOptions = {
  dataDir: Options.directory("data-dir").pipe(Options.withDescription("Data directory (default ./.kiris)"), Options.optional),
  databaseUrl: Options.text("database-url").pipe(
    Options.withDescription(
      "Keep all data in this PostgreSQL database (postgres://user:pass@host:port/db) instead of SQLite files in the data dir; several hubs may share it (default $KIRIS_DATABASE_URL)"
    ),
    Options.optional
  ),
  host: Options.text("host").pipe(Options.withDescription("Interface to bind (default 127.0.0.1; 0.0.0.0 exposes the hub)"), Options.optional),
  port: Options.integer("port").pipe(Options.withDescription("HTTP/WebSocket port (default 7420; 0 picks a free one)"), Options.optional),
  tcpPort: Options.integer("tcp-port").pipe(Options.withDescription("TCP NDJSON RPC port (default 7421; 0 picks a free one)"), Options.optional)
}

/** The Kirosu-compatible port (off unless `--kirosu-port` or `kirosuPort` is set). */
export const kirosuOptions = {
  kirosuPort: Options.integer("kirosu-port").pipe(
    Options.withDescription("Also speak the Kirosu hub protocol (NDJSON over TCP) on this port (0 picks a free one)"),
    Options.optional
  ),
  kirosuKey: Options.text("kirosu-key").pipe(
    Options.withDescription("Shared key Kirosu clients must send as params.auth_token (default $KIRO_SWARM_KEY)"),
    Options.optional
  ),
  kirosuAllowShutdown: Options.boolean("kirosu-allow-shutdown").pipe(
    Options.withDescription("Let a Kirosu `shutdown` request stop the hub (otherwise it only closes that connection)"),
    Options.map((on) => (on ? Option.some("true") : Option.none()))
  ),
  kirosuProject: Options.text("kirosu-project").pipe(
    Options.withDescription("Project (name or id) holding Kirosu tasks; created on first use (default kirosu)"),
    Options.optional
  )
}

/** Settings of the operations endpoints. */
export const opsOptions = {
  metricsToken: Options.text("metrics-token").pipe(
    Options.withDescription("Require Authorization: Bearer TOKEN on /metrics (default $KIRIS_METRICS_TOKEN; unset: open)"),
    Options.optional
  )
}

type HubFlags = { readonly [K in keyof typeof hubOptions]: Option.Option<string | number> }

/** Flags, as strings keyed like config keys, for the highest-precedence config source. */
export const hubFlags = (o: HubFlags, extra: Record<string, Option.Option<string | number | boolean>> = {}) =>
  Object.fromEntries(Object.entries({ ...o, ...extra }).map(([k, v]) => [k, Option.getOrUndefined(Option.map(v, String))])) as Record<
    string,
    string | undefined
  >

/**
 * Runs the hub until interrupted (SIGINT/SIGTERM close every layer in order), or until a Kirosu
 * client sends `shutdown` to a hub started with `--kirosu-allow-shutdown`.
 */
export const runHub = (flags: Record<string, string | undefined>) =>
  Effect.scoped(
    Effect.flatMap(loadHub, ({ HubLayer, KirosuServer }) =>
      Effect.flatMap(
        reportStartFailure(Layer.build(HubLayer.pipe(Layer.provide(ServerConfig.layer)))),
        (context) => Context.get(context, KirosuServer).stopRequested
      )
    )
  ).pipe(withConfiguredLogFormat, withConfigSources(flags, hubSettings), reportConfigInvalid)

/** The hub's layers (SQLite, the AI SDK, the transports), loaded only when a command runs the hub. */
export const loadHub = Effect.promise(async () => {
  const [{ HubLayer }, { KirosuServer }] = await Promise.all([import("../AppLayer.js"), import("../transport/kirosu/KirosuServer.js")])
  return { HubLayer, KirosuServer }
})

/** Everything the hub reads from its config sources, checked before it starts. */
export const hubSettings = Config.all([ServerConfig.config, logFormatConfig])

/** Prints each line of a `ConfigInvalid` as `error: …` and exits non-zero. */
export const reportConfigInvalid = <A, E, R>(effect: Effect.Effect<A, E | ConfigInvalid, R>) =>
  Effect.catchIf(
    effect,
    (e): e is ConfigInvalid => e instanceof ConfigInvalid,
    (e) => Effect.forEach(e.lines, (line) => Console.error(`error: ${line}`)).pipe(Effect.zipRight(new CommandFailed()))
  )

/** The innermost readable reason of a start-up failure (e.g. `listen EADDRINUSE: address already in use 127.0.0.1:7421`). */
const startError = (e: unknown): string => {
  let best = String(e)
  for (let c = e, depth = 0; typeof c === "object" && c !== null && depth < 6; c = (c as { cause?: unknown }).cause, depth++) {
    const message = (c as { message?: unknown }).message
    if (typeof message === "string" && message !== "") best = message
  }
  return best
}

const startErrors = (e: unknown): ReadonlyArray<string> =>
  ConfigError.isConfigError(e) ? describeConfigError(e) : [`cannot start the hub: ${startError(e)}`]

/** Turns a failure to build the hub into one line, `error: cannot start the hub: …`, and a non-zero exit. */
export const reportStartFailure = <A, E, R>(build: Effect.Effect<A, E, R>): Effect.Effect<A, CommandFailed, R> =>
  build.pipe(
    Effect.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause)
        ? Effect.failCause(cause as Cause.Cause<never>)
        : Effect.forEach(startErrors(Cause.squash(cause)), (line) => Console.error(`error: ${line}`)).pipe(Effect.zipRight(new CommandFailed()))
    )
  )

export const serve = Command.make("serve", { ...hubOptions, ...kirosuOptions, ...opsOptions, ...logFormatOptions }, (o) => runHub(hubFlags(o))).pipe(
  Command.withDescription("Run the hub: HTTP + WebSocket RPC, REST API, and the TCP NDJSON RPC port")
)
