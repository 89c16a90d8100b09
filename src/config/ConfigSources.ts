import { Cause, Config, ConfigProvider, Console, Effect, Exit, HashSet } from "effect"
import * as ConfigError from "effect/ConfigError"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { ConfigFileError, ConfigInvalid, type ConfigOrigin, describeConfigError, markOrigin } from "./ConfigErrors.js"
import { ServerConfig } from "./ServerConfig.js"

type Json = Record<string, unknown>

/** `Expected ',' … in JSON at position 15` → `Expected ',' … at line 3 column 1`. */
const jsonReason = (text: string, e: unknown): string => {
  const message = e instanceof Error ? e.message : String(e)
  const at = message.match(/ at position (\d+)/)
  const position = at ? Number(at[1]) : /Unexpected end of JSON input/.test(message) ? text.length : undefined
  const what = message
    .replace(/,? ".*" is not valid JSON$/s, "")
    .replace(/ in JSON at position \d+.*$/s, "")
    .replace(/ of JSON input$/, " of input")
  if (position === undefined) return what
  const before = text.slice(0, position).split("\n")
  return `${what} at line ${before.length} column ${(before[before.length - 1]?.length ?? 0) + 1}`
}

const kindOf = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "an array" : `a ${typeof v}`)

/** Reads one config file: `{}` when it does not exist, else its JSON object. */
export const readConfigFile = (file: string): Effect.Effect<Json, ConfigFileError> =>
  Effect.gen(function* () {
    const text = yield* Effect.try({
      try: () => fs.readFileSync(file, "utf8"),
      catch: (e) => e as NodeJS.ErrnoException
    }).pipe(
      Effect.catchAll((e) =>
        e.code === "ENOENT" ? Effect.succeed(undefined) : new ConfigFileError({ file, reason: `cannot read (${e.code ?? e.message})` })
      )
    )
    if (text === undefined) return {}
    const json = yield* Effect.try({
      try: (): unknown => JSON.parse(text),
      catch: (e) => new ConfigFileError({ file, reason: `not valid JSON (${jsonReason(text, e)})` })
    })
    if (typeof json !== "object" || json === null || Array.isArray(json)) {
      return yield* new ConfigFileError({ file, reason: `expected a JSON object of settings, got ${kindOf(json)}` })
    }
    return json as Json
  })

/** Reads `effect` once, on first use, and replays its result. */
const once = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> => {
  let result: Exit.Exit<A, E> | undefined
  return Effect.suspend(
    () =>
      result ??
      Effect.flatten(
        Effect.tap(Effect.exit(effect), (exit) => {
          result = exit
        })
      )
  )
}

const constantCase = (key: string) =>
  key
    .replace(/([a-z0-9])([A-Z])/g, "$1\0$2")
    .replace(/([A-Z])([A-Z][a-z])/g, "$1\0$2")
    .split(/[^A-Za-z0-9]+/)
    .filter((p) => p !== "")
    .map((p) => p.toUpperCase())
    .join("_")

const kebabCase = (key: string) => constantCase(key).toLowerCase().replace(/_/g, "-")

type Flat = ConfigProvider.ConfigProvider.Flat

/** A flat provider whose invalid values are reported as coming from `origin`. */
const labelled = (
  flat: Flat,
  origin: (path: ReadonlyArray<string>) => ConfigOrigin,
  mapPath: (p: ReadonlyArray<string>) => ReadonlyArray<string> = (p) => p
): Flat =>
  ConfigProvider.makeFlat({
    load: (p, primitive, split) => Effect.mapError(flat.load(mapPath(p), primitive, split), (e) => markOrigin(e, () => origin(p))),
    enumerateChildren: (p) => flat.enumerateChildren(mapPath(p)),
    patch: flat.patch
  })

/** The JSON object of `file`, read (inside Effect) on first use; a broken file fails every read. */
const fileFlat = (file: string): Flat => {
  const json = once(readConfigFile(file))
  const provider = Effect.map(json, (j) => ConfigProvider.fromJson(j).flattened)
  const unavailable = (p: ReadonlyArray<string>) => (e: ConfigFileError) => ConfigError.SourceUnavailable([...p], e.message, Cause.fail(e))
  return labelled(
    ConfigProvider.makeFlat({
      load: (p, primitive, split) => Effect.flatMap(Effect.mapError(provider, unavailable(p)), (flat) => flat.load(p, primitive, split)),
      enumerateChildren: (p) => Effect.flatMap(Effect.mapError(provider, unavailable(p)), (flat) => flat.enumerateChildren(p)),
      patch: ConfigProvider.fromMap(new Map()).flattened.patch
    }),
    (p) => ({ _tag: "File", file, key: p.join(".") })
  )
}

/**
 * The first source that has a key wins; a source with an invalid value for it (or a broken file)
 * stops the search there, so that a bad setting is reported rather than silently passed over.
 */
const preferring = (sources: ReadonlyArray<Flat>): Flat =>
  ConfigProvider.makeFlat({
    load: <A>(p: ReadonlyArray<string>, primitive: Config.Config.Primitive<A>, split: boolean) => {
      const go = (i: number, missing: ConfigError.ConfigError | undefined): Effect.Effect<Array<A>, ConfigError.ConfigError> => {
        const source = sources[i]
        if (source === undefined) return Effect.fail(missing ?? ConfigError.MissingData([...p], `Expected ${p.join(".")} to be set`))
        return Effect.catchAll(source.load(p, primitive, split), (e) =>
          ConfigError.isMissingDataOnly(e) ? go(i + 1, missing === undefined ? e : ConfigError.Or(missing, e)) : Effect.fail(e)
        )
      }
      return go(0, undefined)
    },
    enumerateChildren: (p) =>
      Effect.map(
        Effect.forEach(sources, (s) => Effect.either(s.enumerateChildren(p))),
        (all) => all.reduce((acc, r) => (r._tag === "Right" ? HashSet.union(acc, r.right) : acc), HashSet.empty<string>())
      ),
    patch: ConfigProvider.fromMap(new Map()).flattened.patch
  })

export interface ConfigSourceDirs {
  readonly cwd?: string
  readonly home?: string
  readonly env?: Record<string, string | undefined>
}

/** The two config files, most important first. */
export const configFiles = (sources: ConfigSourceDirs = {}): ReadonlyArray<string> => [
  path.join(sources.cwd ?? process.cwd(), ".kiris", "config.json"),
  path.join(sources.home ?? os.homedir(), ".kiris", "config.json")
]

/**
 * Precedence: flags > `KIRIS_*` environment > `./.kiris/config.json` > `~/.kiris/config.json` >
 * the defaults written next to each `Config`. Keys are camelCase in flags and files
 * (`tcpPort`), CONSTANT_CASE with the `KIRIS_` prefix in the environment (`KIRIS_TCP_PORT`).
 * Settings known by their conventional variable names (`OPENAI_API_KEY`, `KIRO_SWARM_KEY`) are
 * read from the environment as they are, still ahead of the files. The files are read on first
 * use; a broken one fails with `SourceUnavailable` carrying a `ConfigFileError`, and an invalid
 * value names its source (see `describeConfigError`).
 */
export const configProvider = (flags: Record<string, string | undefined>, sources: ConfigSourceDirs = {}): ConfigProvider.ConfigProvider => {
  const given = new Map(Object.entries(flags).filter((e): e is [string, string] => e[1] !== undefined))
  const environment = new Map(Object.entries(sources.env ?? process.env).filter((e): e is [string, string] => e[1] !== undefined))
  const rawEnv = ConfigProvider.fromMap(environment, { pathDelim: "_" }).flattened
  const envName = (p: ReadonlyArray<string>) => ["KIRIS", ...p].map(constantCase).join("_")
  const [local, home] = configFiles(sources).map(fileFlat)
  return ConfigProvider.fromFlat(
    preferring([
      labelled(ConfigProvider.fromMap(given).flattened, (p) => ({ _tag: "Flag", name: `--${p.map(kebabCase).join(".")}` })),
      labelled(
        rawEnv,
        (p) => ({ _tag: "Env", name: envName(p) }),
        (p) => [envName(p)]
      ),
      labelled(rawEnv, (p) => ({ _tag: "Env", name: p.join("_") })),
      local!,
      home!
    ])
  )
}

/** The keys of `ServerConfig`, and those read besides: the log format and conventional variable names. */
const knownKeys = (): ReadonlyArray<string> => [
  ...Object.keys(Effect.runSync(Effect.withConfigProvider(ServerConfig.config, ConfigProvider.fromMap(new Map())))),
  "logFormat",
  "KIRIS_MODEL",
  "OPENAI_API_KEY",
  "OPENAI_BASE_URL",
  "ANTHROPIC_API_KEY",
  "ANTHROPIC_BASE_URL",
  "KIRIS_OPENAI_COMPATIBLE_BASE_URL",
  "KIRIS_OPENAI_COMPATIBLE_API_KEY",
  "KIRIS_LLM_MAX_RETRIES",
  "KIRIS_CODEX_BIN",
  "KIRIS_KIRO_BIN",
  "KIRIS_CLAUDE_BIN",
  "KIRIS_BASH_BIN",
  "KIRIS_PYTHON_BIN",
  "KIRO_SWARM_KEY",
  "KIRIS_HUB",
  "KIRIS_TOKEN",
  "KIRIS_HTTP",
  "KIRIS_RECONNECT_TIMEOUT"
]

const distance = (a: string, b: string): number => {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!
      row[j] = Math.min(above + 1, row[j - 1]! + 1, diagonal + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1))
      diagonal = above
    }
  }
  return row[b.length]!
}

/** `warning: FILE: unknown key "prot" (ignored; did you mean "port"?)` lines for keys nothing reads. */
const unknownKeys = (file: string, json: Json, known: ReadonlyArray<string>): ReadonlyArray<string> =>
  Object.keys(json)
    .filter((k) => !known.includes(k))
    .map((k) => {
      const near = known.filter((c) => distance(k, c) <= 2).sort((x, y) => distance(k, x) - distance(k, y))[0]
      return `${file}: unknown key ${JSON.stringify(k)} (ignored${near === undefined ? "" : `; did you mean ${JSON.stringify(near)}?`})`
    })

/**
 * Runs `effect` with the config sources of `flags`, after checking them: a broken config file, or
 * a value of `check` that cannot be read, fails `ConfigInvalid` (one line per problem, naming the
 * file, variable or flag, the key and what was expected); keys of a file that nothing reads print
 * a warning line each on stderr.
 */
export const withConfigSources =
  (flags: Record<string, string | undefined>, check: Config.Config<unknown>, sources: ConfigSourceDirs = {}) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | ConfigInvalid, R> =>
    Effect.gen(function* () {
      const provider = configProvider(flags, sources)
      const files = yield* Effect.forEach(configFiles(sources), (file) => Effect.map(readConfigFile(file), (json) => ({ file, json })))
      yield* Effect.withConfigProvider(check, provider)
      const known = knownKeys()
      for (const { file, json } of files) for (const w of unknownKeys(file, json, known)) yield* Console.error(`warning: ${w}`)
      return provider
    }).pipe(
      Effect.catchAll((e) => new ConfigInvalid({ lines: e instanceof ConfigFileError ? [e.message] : describeConfigError(e) })),
      Effect.flatMap((provider) => Effect.withConfigProvider(effect, provider))
    )
