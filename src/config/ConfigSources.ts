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
 */
export const configProvider = (flags: Record<string, string | undefined>, cwd = process.cwd()): ConfigProvider.ConfigProvider => {
  const given = new Map(Object.entries(flags).filter((e): e is [string, string] => e[1] !== undefined))
  const env = ConfigProvider.fromEnv().pipe(ConfigProvider.nested("KIRIS"), ConfigProvider.constantCase)
  const rawEnv = ConfigProvider.fromEnv()
  const local = ConfigProvider.fromJson(readJson(path.join(cwd, ".kiris", "config.json")))
  const home = ConfigProvider.fromJson(readJson(path.join(os.homedir(), ".kiris", "config.json")))
  return ConfigProvider.fromMap(given).pipe(
    ConfigProvider.orElse(() => env),
    ConfigProvider.orElse(() => local),
    ConfigProvider.orElse(() => home),
    ConfigProvider.orElse(() => rawEnv)
  )
}
