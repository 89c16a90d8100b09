import { Command, Options } from "@effect/cli"
import { Effect, Layer, Option } from "effect"
import { HubLayer } from "../AppLayer.js"
import { configProvider } from "../config/ConfigSources.js"
import { ServerConfig } from "../config/ServerConfig.js"

export const hubOptions = {
  dataDir: Options.directory("data-dir").pipe(Options.withDescription("Data directory (default ./.kiris)"), Options.optional),
  host: Options.text("host").pipe(Options.withDescription("Interface to bind (default 127.0.0.1; 0.0.0.0 exposes the hub)"), Options.optional),
  port: Options.integer("port").pipe(Options.withDescription("HTTP/WebSocket port (default 7420; 0 picks a free one)"), Options.optional),
  tcpPort: Options.integer("tcp-port").pipe(Options.withDescription("TCP NDJSON RPC port (default 7421; 0 picks a free one)"), Options.optional)
}

type HubFlags = { readonly [K in keyof typeof hubOptions]: Option.Option<string | number> }

/** Flags, as strings keyed like config keys, for the highest-precedence config source. */
export const hubFlags = (o: HubFlags, extra: Record<string, Option.Option<string | number | boolean>> = {}) =>
  Object.fromEntries(
    Object.entries({ ...o, ...extra }).map(([k, v]) => [k, Option.getOrUndefined(Option.map(v, String))])
  ) as Record<string, string | undefined>

/** Runs the hub until interrupted (SIGINT/SIGTERM close every layer in order). */
export const runHub = (flags: Record<string, string | undefined>) =>
  Layer.launch(HubLayer.pipe(Layer.provide(ServerConfig.layer))).pipe(Effect.withConfigProvider(configProvider(flags)))

export const serve = Command.make("serve", hubOptions, (o) => runHub(hubFlags(o))).pipe(
  Command.withDescription("Run the hub: HTTP + WebSocket RPC, REST API, and the TCP NDJSON RPC port")
)
