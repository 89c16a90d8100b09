import { Options } from "@effect/cli"
import { Cause, Config, Console, Data, Effect, Option, Redacted, type Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { type HubRpcClient, makeHubClient, parseHub } from "../client/HubClient.js"
import { formatJson } from "./Table.js"

/**
 * What every client command of the `kiris` CLI shares: the `--hub`/`--token` options, how they
 * default (flag > `KIRIS_HUB`/`KIRIS_TOKEN` > `./.kiris/admin.key`), the connection, and how a
 * failure is shown (one `error: …` line on stderr and a non-zero exit, never a stack trace).
 */

export const DEFAULT_HUB = "127.0.0.1:7421"

export const clientOptions = {
  hub: Options.text("hub").pipe(
    Options.withPseudoName("HOST:PORT"),
    Options.withDescription(`Hub address: host:port (TCP NDJSON) or ws://host:port (WebSocket); default $KIRIS_HUB, else ${DEFAULT_HUB}`),
    Options.optional
  ),
  token: Options.redacted("token").pipe(
    Options.withPseudoName("TOKEN"),
    Options.withDescription("API key or access token; default $KIRIS_TOKEN, else the contents of ./.kiris/admin.key"),
    Options.optional
  )
}

export const outputOptions = {
  json: Options.boolean("json").pipe(Options.withDescription("Print JSON for scripts instead of a table"))
}

export interface ClientFlags {
  readonly hub: Option.Option<string>
  readonly token: Option.Option<Redacted.Redacted<string>>
}

/** A failure already phrased for the user. */
export class CliError extends Data.TaggedError("CliError")<{ readonly message: string }> {}

/** The command failed and said why on stderr; the process exits with code 1. */
export class CommandFailed extends Data.TaggedError("CommandFailed")<{}> {}

export const resolveHub = (flags: Pick<ClientFlags, "hub">) =>
  Option.match(flags.hub, {
    onSome: Effect.succeed,
    onNone: () =>
      Config.string("KIRIS_HUB").pipe(
        Config.withDefault(DEFAULT_HUB),
        Effect.orElseSucceed(() => DEFAULT_HUB)
      )
  })

export const adminKeyFile = (cwd: string) => path.join(cwd, ".kiris", "admin.key")

export const resolveToken = (flags: Pick<ClientFlags, "token">, cwd = process.cwd()): Effect.Effect<string, CliError> =>
  Effect.gen(function* () {
    if (Option.isSome(flags.token)) return Redacted.value(flags.token.value)
    const env = yield* Config.option(Config.string("KIRIS_TOKEN")).pipe(Effect.orElseSucceed(() => Option.none<string>()))
    if (Option.isSome(env) && env.value.trim() !== "") return env.value.trim()
    const file = adminKeyFile(cwd)
    const content = yield* Effect.option(Effect.try(() => fs.readFileSync(file, "utf8").trim()))
    if (Option.isSome(content) && content.value !== "") return content.value
    return yield* new CliError({
      message: `not authenticated: pass --token <key>, set KIRIS_TOKEN, or run in the directory whose .kiris/admin.key was written by \`kiris serve\``
    })
  })

interface Tagged {
  readonly _tag: string
  readonly message?: unknown
  readonly reason?: unknown
  readonly cause?: unknown
}

const isTagged = (u: unknown): u is Tagged => typeof u === "object" && u !== null && typeof (u as Tagged)._tag === "string"

const socketErrorCode = (error: Tagged): string | undefined => {
  const socketError = error.cause
  if (!isTagged(socketError) || socketError._tag !== "SocketError" || socketError.reason !== "Open") return undefined
  const cause = socketError.cause as { code?: unknown; message?: unknown } | undefined
  return typeof cause?.code === "string"
    ? cause.code
    : typeof cause?.message === "string" && cause.message !== ""
      ? cause.message
      : "connection failed"
}

/** One line describing a failure of a hub call: typed RPC errors, connection problems, CLI errors. */
export const describeError = (error: unknown, hub: string): string => {
  if (!isTagged(error)) return String(error)
  if (error._tag === "RpcClientError") {
    const code = socketErrorCode(error)
    if (code !== undefined) return `cannot reach hub at ${hub}: is \`kiris serve\` running? (${code})`
    return `connection to hub at ${hub} failed: ${String(error.message)}`
  }
  if (error._tag === "CliError") return String(error.message)
  const detail = typeof error.reason === "string" ? error.reason : typeof error.message === "string" ? error.message : ""
  return detail === "" ? error._tag : `${error._tag}: ${detail}`
}

const describeDefect = (defect: unknown): string => {
  if (defect instanceof Error) return defect.message
  if (typeof defect === "string") return defect
  return JSON.stringify(defect)
}

/** Prints `error: …` for any failure or defect of `effect` and fails with `CommandFailed`. */
export const reportErrors =
  (hub: string) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, CommandFailed, R> =>
    Effect.catchAllCause(effect, (cause) => {
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
      const failure = Cause.failureOption(cause)
      const message = Option.isSome(failure)
        ? describeError(failure.value, hub)
        : `the hub could not handle the request: ${describeDefect(Cause.squash(cause))}`
      return Console.error(`error: ${message}`).pipe(Effect.zipRight(new CommandFailed()))
    })

/**
 * Connects to the hub named by the flags for the duration of `f`, then disconnects. Every failure
 * inside `f` (typed RPC errors, connection errors, defects) is reported as one line.
 */
export const withClient = <A, E, R>(
  flags: ClientFlags,
  f: (client: HubRpcClient) => Effect.Effect<A, E, R>
): Effect.Effect<A, CommandFailed, Exclude<R, Scope.Scope>> =>
  Effect.flatMap(resolveHub(flags), (hub) =>
    Effect.gen(function* () {
      const token = yield* resolveToken(flags)
      const client = yield* makeHubClient(parseHub(hub), token)
      return yield* f(client)
    }).pipe(Effect.scoped, reportErrors(hub))
  )

/** Prints `value` as JSON when `--json` was given, else the human rendering. */
export const output = (json: boolean, value: unknown, human: () => string) => Console.log(json ? formatJson(value) : human())
