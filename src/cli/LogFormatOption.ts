import { Options } from "@effect/cli"
import { Console, Effect } from "effect"
import { logFormats, readLogFormat, withLogFormat } from "../runtime/Logging.js"
import { CommandFailed } from "./ClientOptions.js"

/** `--log-format pretty|json` of `serve`, `up` and `worker` (config key `logFormat`, env `KIRIS_LOG_FORMAT`). */
export const logFormatOptions = {
  logFormat: Options.choice("log-format", logFormats).pipe(
    Options.withDescription("Log format: pretty (default, human-readable) or json (one JSON object per line); config key logFormat"),
    Options.optional
  )
}

/** The configured log format; an invalid one is a one-line error and a non-zero exit. */
export const resolveLogFormat = readLogFormat.pipe(
  Effect.catchAll((reason) => Console.error(`error: ${reason}`).pipe(Effect.zipRight(new CommandFailed())))
)

/** Runs `effect` in the configured log format (read with the current config provider). */
export const withConfiguredLogFormat = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | CommandFailed, R> =>
  Effect.flatMap(resolveLogFormat, (format) => withLogFormat(format)(effect))
