import { Config, Console, Effect, FiberRef, HashSet, Inspectable, Logger } from "effect"

/** How the hub and workers write their log: `pretty` (human-readable, the default) or `json`. */
export type LogFormat = "pretty" | "json"
export const logFormats: ReadonlyArray<LogFormat> = ["pretty", "json"]

/** `logFormat` from the config sources (`--log-format`, `KIRIS_LOG_FORMAT`, the config files); `pretty` by default. */
export const logFormatConfig: Config.Config<LogFormat> = Config.literal("pretty", "json")("logFormat").pipe(Config.withDefault("pretty" as const))

/** The configured format, or a one-line reason it is invalid. */
export const readLogFormat: Effect.Effect<LogFormat, string> = Effect.mapError(
  logFormatConfig,
  () => `logFormat: expected one of ${logFormats.join(", ")}`
)

const text = (args: ReadonlyArray<unknown>) => args.map((a) => (typeof a === "string" ? a : Inspectable.format(a))).join(" ")

/**
 * A Console whose `log`/`info`/`warn`/`error`/`debug` become log records, so that in JSON mode the
 * status lines the commands print (`kiris listening …`, a worker's line per task) are JSON objects
 * too. The loggers write through its `unsafe` console, the real one.
 */
const loggingConsole = (base: Console.Console): Console.Console => ({
  ...base,
  log: (...args) => Effect.logInfo(text(args)),
  info: (...args) => Effect.logInfo(text(args)),
  debug: (...args) => Effect.logDebug(text(args)),
  warn: (...args) => Effect.logWarning(text(args)),
  error: (...args) => Effect.logError(text(args))
})

/** One JSON object per line on standard output. */
const jsonLines = Logger.withConsoleLog(Logger.jsonLogger)

/**
 * Runs `effect` with the log format: `pretty` leaves the logger as it is (Effect's default, or the
 * pretty one the Node runtime installs); `json` puts `Logger.jsonLogger` in its place (one object
 * per line on standard output: `message`, `logLevel`, `timestamp`, `annotations`, `spans`,
 * `fiberId`, `cause`) and routes the Console through it. Other loggers (the tracer's) stay.
 */
export const withLogFormat =
  (format: LogFormat) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    format === "pretty"
      ? effect
      : Effect.flatMap(Effect.console, (base) =>
          effect.pipe(
            Effect.withConsole(loggingConsole(base)),
            Effect.locallyWith(FiberRef.currentLoggers, (loggers) =>
              loggers.pipe(HashSet.remove(Logger.defaultLogger), HashSet.remove(Logger.prettyLoggerDefault), HashSet.add(jsonLines))
            )
          )
        )
