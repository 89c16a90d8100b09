import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { configProvider } from "../../src/config/ConfigSources.js"
import { ServerConfig } from "../../src/config/ServerConfig.js"
import { tempDir } from "../support/Hub.js"

const writeConfig = (dir: string, json: unknown) => {
  fs.mkdirSync(path.join(dir, ".kiris"), { recursive: true })
  fs.writeFileSync(path.join(dir, ".kiris", "config.json"), JSON.stringify(json))
  return dir
}

const read = (flags: Record<string, string | undefined>, sources: Parameters<typeof configProvider>[1]) =>
  Effect.withConfigProvider(ServerConfig.config, configProvider(flags, sources))

describe("config precedence: flags > KIRIS_* env > ./.kiris/config.json > ~/.kiris/config.json > defaults", () => {
  it.effect("each source wins over the ones after it, key by key", () =>
    Effect.gen(function* () {
      const home = writeConfig(tempDir(), { port: 1001, tcpPort: 1002, host: "10.0.0.1", leaseSeconds: 11, eventBuffer: 99 })
      const cwd = writeConfig(tempDir(), { port: 2001, tcpPort: 2002, host: "10.0.0.2" })
      const env = { KIRIS_PORT: "3001", KIRIS_TCP_PORT: "3002" }
      const c = yield* read({ port: "4001" }, { cwd, home, env })
      assert.strictEqual(c.port, 4001, "flag beats env")
      assert.strictEqual(c.tcpPort, 3002, "env beats the local file")
      assert.strictEqual(c.host, "10.0.0.2", "local file beats the home file")
      assert.strictEqual(c.leaseSeconds, 11, "home file beats the default")
      assert.strictEqual(c.eventBuffer, 99)
      assert.strictEqual(c.projectIdleSeconds, 300, "default when nobody sets it")
    }))

  it.effect("defaults with no sources; conventional variable names are read as they are", () =>
    Effect.gen(function* () {
      const empty = tempDir()
      const c = yield* read({}, { cwd: empty, home: empty, env: { KIRO_SWARM_KEY: "k1" } })
      assert.deepStrictEqual([c.host, c.port, c.tcpPort, path.basename(c.dataDir)], ["127.0.0.1", 7420, 7421, ".kiris"])
      assert.strictEqual(Option.map(c.kirosuKey, Redacted.value).pipe(Option.getOrUndefined), "k1")
    }))

  it.effect("a malformed value is a clear config error naming the key", () =>
    Effect.gen(function* () {
      const empty = tempDir()
      const error = yield* Effect.flip(read({}, { cwd: empty, home: empty, env: { KIRIS_PORT: "eighty" } }))
      assert.include(String(error), "PORT")
    }))
})
