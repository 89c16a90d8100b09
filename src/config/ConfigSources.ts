import { ConfigProvider } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const readJson = (file: string): unknown => {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"))
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return {}
    throw new Error(`cannot read config file ${file}: ${(e as Error).message}`)
  }
}

/**
 * Precedence: flags > `KIRIS_*` environment > `./.kiris/config.json` > `~/.kiris/config.json` >
 * the defaults written next to each `Config`. Keys are camelCase in flags and files
 * (`tcpPort`), CONSTANT_CASE with the `KIRIS_` prefix in the environment (`KIRIS_TCP_PORT`).
 * Settings known by their conventional variable names (`OPENAI_API_KEY`, `KIRO_SWARM_KEY`) are
 * read from the environment as they are, still ahead of the files.
 */
export const configProvider = (
  flags: Record<string, string | undefined>,
  sources: { readonly cwd?: string; readonly home?: string; readonly env?: Record<string, string | undefined> } = {}
): ConfigProvider.ConfigProvider => {
  const given = new Map(Object.entries(flags).filter((e): e is [string, string] => e[1] !== undefined))
  const environment = new Map(Object.entries(sources.env ?? process.env).filter((e): e is [string, string] => e[1] !== undefined))
  const rawEnv = ConfigProvider.fromMap(environment, { pathDelim: "_" })
  const env = rawEnv.pipe(ConfigProvider.nested("KIRIS"), ConfigProvider.constantCase)
  const local = ConfigProvider.fromJson(readJson(path.join(sources.cwd ?? process.cwd(), ".kiris", "config.json")))
  const home = ConfigProvider.fromJson(readJson(path.join(sources.home ?? os.homedir(), ".kiris", "config.json")))
  return ConfigProvider.fromMap(given).pipe(
    ConfigProvider.orElse(() => env),
    ConfigProvider.orElse(() => rawEnv),
    ConfigProvider.orElse(() => local),
    ConfigProvider.orElse(() => home)
  )
}
