import { Config, ConfigProvider, Context, Effect, Either, Layer, Option, Redacted, Schema } from "effect"
import type { ConfigError } from "effect/ConfigError"
import * as ConfigErr from "effect/ConfigError"
import * as os from "node:os"
import * as path from "node:path"
import { ModelPrice, ModelPrices } from "../llm/Prices.js"

/** Settings of a hub process, read once through `effect/Config` (see ConfigSources for precedence). */
export interface ServerConfigShape {
  readonly dataDir: string
  /**
   * `postgres://…`: root, queue and project data live in this PostgreSQL database (projects in
   * schemas of their own) and several hubs may share it. Unset: SQLite files in `dataDir`.
   */
  readonly databaseUrl: Option.Option<Redacted.Redacted>
  readonly host: string
  readonly port: number
  readonly tcpPort: number
  /** HS256 secret for access tokens; generated into the data dir when not configured. */
  readonly jwtSecret: Option.Option<Redacted.Redacted>
  readonly tokenTtlSeconds: number
  /** Largest accepted RPC frame (NDJSON line or WebSocket message), in bytes. */
  readonly maxFrameBytes: number
  /** Project databases close after this long unused. */
  readonly projectIdleSeconds: number
  /** Per-subscriber event buffer; a subscriber further behind is told how many events it missed. */
  readonly eventBuffer: number
  /** Per-subscriber event backlog, in estimated bytes; the oldest events beyond it are dropped (`Lagged`). */
  readonly subscriberBufferBytes: number
  /** Logged events of a project younger than this many days are kept (replayable with `since`). */
  readonly eventRetentionDays: number
  /** Most logged events kept per project (the newest); older ones are pruned whatever their age. */
  readonly eventRetentionCount: number
  /** Streaming deltas (`PartDelta`) of finished messages are dropped from the log after this many minutes. */
  readonly eventDeltaRetentionMinutes: number
  /** How often project event logs are pruned. */
  readonly eventPruneIntervalSeconds: number
  /** Seconds between the comment lines (`: ping`) that keep an idle Server-Sent Events stream open. */
  readonly sseHeartbeatSeconds: number
  /** Requests one connection may have open at once (streams included); more get an error reply each. */
  readonly maxInFlightPerConnection: number
  /** Reply bytes a connection may have waiting for its client to read; beyond it, the hub stops starting its requests. */
  readonly maxQueuedOutputBytes: number
  /**
   * Unary calls of one connection that run at once; more wait their turn (calls marked `Waits`,
   * such as `task.wait`, do not count). Keeps one client's heavy calls from crowding out others.
   */
  readonly maxRunningPerConnection: number
  /** A connection whose queued replies stay above `maxQueuedOutputBytes` this long without draining is closed. */
  readonly outputStallSeconds: number
  /** A connection without one authenticated request this long after it opened is closed. */
  readonly authTimeoutSeconds: number
  /**
   * On SIGTERM/SIGINT, how long unary requests already being handled (`task.wait` included) may
   * run on before the hub interrupts them (and its streams) and exits.
   */
  readonly shutdownGraceSeconds: number
  readonly leaseSeconds: number
  /** First retry delay of a failed task; doubles per attempt (with jitter) up to `taskRetryMaxMs`. */
  readonly taskRetryBaseMs: number
  readonly taskRetryMaxMs: number
  /** How often expired leases are returned to the queue. */
  readonly reaperIntervalMs: number
  /** A tool call waiting on a permission `ask` is rejected after this long without an answer. */
  readonly permissionTimeoutSeconds: number
  readonly kirosuPort: Option.Option<number>
  readonly kirosuKey: Option.Option<Redacted.Redacted>
  readonly kirosuAllowShutdown: boolean
  readonly kirosuProject: string
  /** When set, `/metrics` answers only requests with `Authorization: Bearer <metricsToken>`. */
  readonly metricsToken: Option.Option<Redacted.Redacted>
  /** Most model calls (steps of the tool loop) in one agent turn. */
  readonly agentMaxSteps: number
  /** A model call fails when its server sends no response byte this long after the request (0: no limit). Retried. */
  readonly modelFirstByteTimeoutSeconds: number
  /** A model call fails when its server's response stalls this long between two chunks (0: no limit). */
  readonly modelIdleTimeoutSeconds: number
  /** Directories under which server admins may point a project at an existing workspace (absolute). */
  readonly workspaceRoots: ReadonlyArray<string>
  /**
   * Model prices (USD per million tokens) by `provider:model`, over the built-in table of
   * src/llm/Prices.ts. A JSON object in a config file, or the same object as a JSON string.
   */
  readonly modelPrices: ModelPrices
  /** Largest workspace file the hub versions (writes of bigger files fail `FileTooLarge`), in bytes. */
  readonly fileMaxBytes: number
  /** Bytes of distinct file contents a project may store (all versions); beyond it writes fail `QuotaExceeded`. */
  readonly fileQuotaBytes: number
  /** Versions of a path always kept by pruning (newest first), whatever their age. */
  readonly fileKeepVersions: number
  /** Versions younger than this many days are always kept by pruning. */
  readonly fileKeepDays: number
  /** Seconds a session's edit lock on a path lasts after its last write (released earlier when the turn ends). */
  readonly fileLockTtl: number
  /** How long a write to a path another session has locked waits for the lock before failing `FileLocked`, in ms. */
  readonly fileLockWaitMs: number
  /** Extra `Origin`s `/mcp` accepts besides none, localhost and the hub's own host (e.g. `https://app.example.com`). */
  readonly mcpAllowedOrigins: ReadonlyArray<string>
  /** An `/mcp` session without a request this long is closed. */
  readonly mcpSessionIdleSeconds: number
  /** Open `/mcp` sessions one user may have at once; beyond it their least recently used idle one is closed. */
  readonly mcpMaxSessionsPerCaller: number
  /** A present connection that neither heartbeats nor joins again for this long is dropped (`Left`, reason `timeout`). */
  readonly presenceTimeoutSeconds: number
  /** Projects one connection may be present in at once; more joins fail `PresenceLimit`. */
  readonly presenceMaxPerConnection: number
  /** How long a `presence.typing` call shows the connection as typing, unless it types again. */
  readonly typingSeconds: number
  /** Least time between two `Typing` broadcasts of one connection in one project; calls in between only extend the mark. */
  readonly typingIntervalMs: number
}

const priceEntries = Config.hashMap(
  Config.all({
    input: Config.number("input"),
    output: Config.number("output"),
    cachedInput: Config.option(Config.number("cachedInput"))
  }),
  "modelPrices"
).pipe(
  Config.map((entries) => {
    const out: Record<string, ModelPrice> = {}
    for (const [key, v] of entries) {
      out[key] = ModelPrice.make({ input: v.input, output: v.output, ...(Option.isSome(v.cachedInput) ? { cachedInput: v.cachedInput.value } : {}) })
    }
    return out
  }),
  Config.withDefault({})
)

/** `modelPrices` as a JSON string (environment, flags) or as an object (config files). */
// Read as a sequence and joined again: environment and flag providers split values at commas.
const modelPricesConfig: Config.Config<ModelPrices> = Config.array(Config.string(), "modelPrices").pipe(
  Config.mapOrFail((pieces) =>
    Either.mapLeft(Schema.decodeUnknownEither(Schema.parseJson(ModelPrices))(pieces.join(",")), (e) =>
      ConfigErr.InvalidData([], `expected {"provider:model": {"input": USD, "output": USD, "cachedInput"?: USD}}: ${e.message}`)
    )
  ),
  Config.orElseIf({ if: ConfigErr.isMissingDataOnly, orElse: () => priceEntries })
)

export class ServerConfig extends Context.Tag("kiris/ServerConfig")<ServerConfig, ServerConfigShape>() {
  static readonly config: Config.Config<ServerConfigShape> = Config.all({
    dataDir: Config.string("dataDir").pipe(
      Config.withDefault(".kiris"),
      Config.map((d) => path.resolve(d))
    ),
    databaseUrl: Config.option(Config.redacted("databaseUrl")).pipe(
      Config.validate({
        message: "expected a postgres:// or postgresql:// URL",
        validation: (url) => Option.isNone(url) || /^postgres(ql)?:\/\//.test(Redacted.value(url.value))
      })
    ),
    host: Config.string("host").pipe(Config.withDefault("127.0.0.1")),
    port: Config.integer("port").pipe(Config.withDefault(7420)),
    tcpPort: Config.integer("tcpPort").pipe(Config.withDefault(7421)),
    jwtSecret: Config.option(Config.redacted("jwtSecret")),
    tokenTtlSeconds: Config.integer("tokenTtlSeconds").pipe(Config.withDefault(12 * 3600)),
    maxFrameBytes: Config.integer("maxFrameBytes").pipe(Config.withDefault(4 * 1024 * 1024)),
    projectIdleSeconds: Config.integer("projectIdleSeconds").pipe(Config.withDefault(300)),
    eventBuffer: Config.integer("eventBuffer").pipe(Config.withDefault(16_384)),
    subscriberBufferBytes: Config.integer("subscriberBufferBytes").pipe(Config.withDefault(8 * 1024 * 1024)),
    eventRetentionDays: Config.number("eventRetentionDays").pipe(Config.withDefault(7)),
    eventRetentionCount: Config.integer("eventRetentionCount").pipe(Config.withDefault(100_000)),
    eventDeltaRetentionMinutes: Config.number("eventDeltaRetentionMinutes").pipe(Config.withDefault(60)),
    eventPruneIntervalSeconds: Config.number("eventPruneIntervalSeconds").pipe(Config.withDefault(600)),
    sseHeartbeatSeconds: Config.number("sseHeartbeatSeconds").pipe(Config.withDefault(15)),
    maxInFlightPerConnection: Config.integer("maxInFlightPerConnection").pipe(Config.withDefault(64)),
    maxQueuedOutputBytes: Config.integer("maxQueuedOutputBytes").pipe(Config.withDefault(16 * 1024 * 1024)),
    maxRunningPerConnection: Config.integer("maxRunningPerConnection").pipe(Config.withDefault(4)),
    outputStallSeconds: Config.number("outputStallSeconds").pipe(Config.withDefault(30)),
    authTimeoutSeconds: Config.number("authTimeoutSeconds").pipe(Config.withDefault(10)),
    shutdownGraceSeconds: Config.number("shutdownGraceSeconds").pipe(Config.withDefault(10)),
    leaseSeconds: Config.integer("leaseSeconds").pipe(Config.withDefault(300)),
    taskRetryBaseMs: Config.integer("taskRetryBaseMs").pipe(Config.withDefault(1000)),
    taskRetryMaxMs: Config.integer("taskRetryMaxMs").pipe(Config.withDefault(300_000)),
    reaperIntervalMs: Config.integer("reaperIntervalMs").pipe(Config.withDefault(1000)),
    permissionTimeoutSeconds: Config.number("permissionTimeoutSeconds").pipe(Config.withDefault(300)),
    kirosuPort: Config.option(Config.integer("kirosuPort")),
    kirosuKey: Config.option(Config.redacted("kirosuKey")).pipe(
      Config.zipWith(Config.option(Config.redacted(Config.string("KIRO_SWARM_KEY"))), (a, b) => Option.orElse(a, () => b))
    ),
    kirosuAllowShutdown: Config.boolean("kirosuAllowShutdown").pipe(Config.withDefault(false)),
    kirosuProject: Config.string("kirosuProject").pipe(Config.withDefault("kirosu")),
    metricsToken: Config.option(Config.redacted("metricsToken")),
    agentMaxSteps: Config.integer("agentMaxSteps").pipe(Config.withDefault(25)),
    modelFirstByteTimeoutSeconds: Config.number("modelFirstByteTimeoutSeconds").pipe(Config.withDefault(60)),
    modelIdleTimeoutSeconds: Config.number("modelIdleTimeoutSeconds").pipe(Config.withDefault(120)),
    workspaceRoots: Config.array(Config.string(), "workspaceRoots").pipe(
      Config.withDefault([os.homedir()]),
      Config.map((roots) => roots.filter((r) => r.trim() !== "").map((r) => path.resolve(r.replace(/^~(?=$|\/)/, os.homedir()))))
    ),
    modelPrices: modelPricesConfig,
    fileMaxBytes: Config.integer("fileMaxBytes").pipe(Config.withDefault(10 * 1024 * 1024)),
    fileQuotaBytes: Config.integer("fileQuotaBytes").pipe(Config.withDefault(1024 * 1024 * 1024)),
    fileKeepVersions: Config.integer("fileKeepVersions").pipe(Config.withDefault(50)),
    fileKeepDays: Config.number("fileKeepDays").pipe(Config.withDefault(30)),
    fileLockTtl: Config.number("fileLockTtl").pipe(Config.withDefault(120)),
    fileLockWaitMs: Config.integer("fileLockWaitMs").pipe(Config.withDefault(2000)),
    mcpAllowedOrigins: Config.array(Config.string(), "mcpAllowedOrigins").pipe(
      Config.withDefault([]),
      Config.map((origins) => origins.map((o) => o.trim().replace(/\/+$/, "")).filter((o) => o !== ""))
    ),
    mcpSessionIdleSeconds: Config.number("mcpSessionIdleSeconds").pipe(Config.withDefault(1800)),
    mcpMaxSessionsPerCaller: Config.integer("mcpMaxSessionsPerCaller").pipe(Config.withDefault(16)),
    presenceTimeoutSeconds: Config.number("presenceTimeoutSeconds").pipe(Config.withDefault(30)),
    presenceMaxPerConnection: Config.integer("presenceMaxPerConnection").pipe(Config.withDefault(32)),
    typingSeconds: Config.number("typingSeconds").pipe(Config.withDefault(5)),
    typingIntervalMs: Config.integer("typingIntervalMs").pipe(Config.withDefault(1000))
  })

  static readonly layer: Layer.Layer<ServerConfig, ConfigError> = Layer.effect(ServerConfig, ServerConfig.config)

  /** For tests and embedding: defaults with the given overrides. */
  static readonly layerWith = (overrides: Partial<ServerConfigShape> & { readonly dataDir: string }) =>
    Layer.effect(
      ServerConfig,
      Effect.map(Effect.withConfigProvider(ServerConfig.config, emptyProvider), (c) => ({ ...c, ...overrides }))
    ).pipe(Layer.orDie)
}

const emptyProvider = ConfigProvider.fromMap(new Map())
