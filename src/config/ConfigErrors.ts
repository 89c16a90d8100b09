import { Cause, Option, Schema } from "effect"
import * as ConfigError from "effect/ConfigError"

/** A config file that cannot be used at all: unreadable, not JSON, or not a JSON object. */
export class ConfigFileError extends Schema.TaggedError<ConfigFileError>()("ConfigFileError", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.file}: ${this.reason}`
  }
}

/** Settings that cannot be read, one line per problem (`KIRIS_PORT: expected an integer, got "abc"`). */
export class ConfigInvalid extends Schema.TaggedError<ConfigInvalid>()("ConfigInvalid", {
  lines: Schema.Array(Schema.String)
}) {
  override get message() {
    return this.lines.join("\n")
  }
}

/** Where a value came from: a flag, an environment variable, or a key of a config file. */
export type ConfigOrigin =
  | { readonly _tag: "Flag"; readonly name: string }
  | { readonly _tag: "Env"; readonly name: string }
  | { readonly _tag: "File"; readonly file: string; readonly key: string }

// The providers of ConfigSources register the errors they raise; errors pass unchanged (as
// leaves of And/Or) up to the caller, so the origin of a leaf is found again by identity.
const origins = new WeakMap<ConfigError.ConfigError, ConfigOrigin>()

/** Marks the invalid-data leaves of `error` as coming from `origin`. */
export const markOrigin = (error: ConfigError.ConfigError, origin: (path: ReadonlyArray<string>) => ConfigOrigin): ConfigError.ConfigError => {
  for (const leaf of leaves(error)) if (leaf._op === "InvalidData" && !origins.has(leaf)) origins.set(leaf, origin(leaf.path))
  return error
}

const leaves = (error: ConfigError.ConfigError): ReadonlyArray<ConfigError.ConfigError> =>
  error._op === "And" || error._op === "Or" ? [...leaves(error.left), ...leaves(error.right)] : [error]

/** `Expected an integer value but received "abc"` → `expected an integer, got "abc"`. */
const expectation = (message: string): string => {
  const m = message.match(/^Expected (.+?)(?: value)? but received (.*)$/s)
  if (m) return `expected ${m[1]}, got ${m[2]}`
  return message.charAt(0).toLowerCase() + message.slice(1)
}

const keyOf = (path: ReadonlyArray<string>) => (path.length === 0 ? "(settings)" : path.join("."))

const line = (leaf: ConfigError.ConfigError): string => {
  switch (leaf._op) {
    case "SourceUnavailable": {
      const file = Cause.failureOption(leaf.cause).pipe(Option.filter((e): e is ConfigFileError => e instanceof ConfigFileError))
      return Option.isSome(file) ? file.value.message : `${keyOf(leaf.path)}: ${leaf.message}`
    }
    case "InvalidData": {
      const origin = origins.get(leaf)
      const what = expectation(leaf.message)
      if (origin === undefined) return `${keyOf(leaf.path)}: ${what}`
      return origin._tag === "File" ? `${origin.file}: ${origin.key}: ${what}` : `${origin.name}: ${what}`
    }
    case "MissingData":
      return `${keyOf(leaf.path)}: missing (${expectation(leaf.message)})`
    case "Unsupported":
      return `${keyOf(leaf.path)}: ${expectation(leaf.message)}`
    default:
      return String(leaf)
  }
}

/**
 * One line per problem of `error`, naming the source (file, variable or flag) where it is known,
 * the key, and what was expected. Missing values are problems only when nothing else is.
 */
export const describeConfigError = (error: ConfigError.ConfigError): ReadonlyArray<string> => {
  const all = leaves(error)
  const real = all.filter((l) => l._op !== "MissingData")
  return [...new Set((real.length > 0 ? real : all).map(line))]
}
