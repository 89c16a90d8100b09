import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { describeConfigError } from "../../src/config/ConfigErrors.js"
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
    })
  )

  it.effect("defaults with no sources; conventional variable names are read as they are", () =>
    Effect.gen(function* () {
      const empty = tempDir()
      const c = yield* read({}, { cwd: empty, home: empty, env: { KIRO_SWARM_KEY: "k1" } })
      assert.deepStrictEqual([c.host, c.port, c.tcpPort, path.basename(c.dataDir)], ["127.0.0.1", 7420, 7421, ".kiris"])
      assert.strictEqual(Option.map(c.kirosuKey, Redacted.value).pipe(Option.getOrUndefined), "k1")
    })
  )

  it.effect("a malformed value is a clear config error naming the key", () =>
    Effect.gen(function* () {
      const empty = tempDir()
      const error = yield* Effect.flip(read({}, { cwd: empty, home: empty, env: { KIRIS_PORT: "eighty" } }))
      assert.include(String(error), "PORT")
    })
  )
})

const writeRaw = (dir: string, text: string) => {
  fs.mkdirSync(path.join(dir, ".kiris"), { recursive: true })
  const file = path.join(dir, ".kiris", "config.json")
  fs.writeFileSync(file, text)
  return file
}

/** The lines a failed read of the server config prints. */
const problems = (flags: Record<string, string | undefined>, sources: Parameters<typeof configProvider>[1]) =>
  Effect.map(Effect.flip(read(flags, sources)), describeConfigError)

describe("config problems: one line naming the source, the key and what was expected", () => {
  it.effect("a file that is not JSON names the file and where the JSON breaks", () =>
    Effect.gen(function* () {
      const cwd = tempDir()
      const file = writeRaw(cwd, '{\n  "port": 1,\n}\n')
      assert.deepStrictEqual(yield* problems({}, { cwd, home: tempDir(), env: {} }), [
        `${file}: not valid JSON (Expected double-quoted property name at line 3 column 1)`
      ])
    })
  )

  it.effect("a file holding JSON that is not an object is refused", () =>
    Effect.gen(function* () {
      const home = tempDir()
      const file = writeRaw(home, "[1, 2]")
      assert.deepStrictEqual(yield* problems({}, { cwd: tempDir(), home, env: {} }), [`${file}: expected a JSON object of settings, got an array`])
    })
  )

  it.effect("a value of the wrong type names the file and the key", () =>
    Effect.gen(function* () {
      const cwd = tempDir()
      const file = writeRaw(cwd, JSON.stringify({ port: "abc", leaseSeconds: 1.5 }))
      assert.deepStrictEqual(yield* problems({}, { cwd, home: tempDir(), env: {} }), [
        `${file}: port: expected an integer, got "abc"`,
        `${file}: leaseSeconds: expected an integer, got "1.5"`
      ])
    })
  )

  it.effect("a bad environment value names the variable, and is not passed over for a file's value", () =>
    Effect.gen(function* () {
      const cwd = writeConfig(tempDir(), { tcpPort: 9000 })
      const env = { KIRIS_TCP_PORT: "abc" }
      assert.deepStrictEqual(yield* problems({}, { cwd, home: tempDir(), env }), [`KIRIS_TCP_PORT: expected an integer, got "abc"`])
    })
  )

  it("a broken file is read inside Effect: building the provider does not throw", () => {
    const cwd = tempDir()
    writeRaw(cwd, "{")
    assert.doesNotThrow(() => configProvider({}, { cwd, home: tempDir(), env: {} }))
  })
})
