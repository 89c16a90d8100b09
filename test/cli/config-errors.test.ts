import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { tempDir } from "../support/Hub.js"
import { runKiris, spawnKiris } from "../support/KirisProcess.js"

/** `kiris serve` with a broken configuration: one `error: …` line on stderr and exit 1. */

const LISTENING = /^kiris listening http=http:\/\/127\.0\.0\.1:\d+ tcp=127\.0\.0\.1:\d+$/

/** A working directory whose `.kiris/config.json` holds `text`; HOME is another empty directory. */
const workdir = (text: string) => {
  const cwd = tempDir("kiris-cwd-")
  fs.mkdirSync(path.join(cwd, ".kiris"))
  const file = path.join(cwd, ".kiris", "config.json")
  fs.writeFileSync(file, text)
  return { cwd, file, home: tempDir("kiris-home-") }
}

const serveArgs = (cwd: string) => ["serve", "--data-dir", path.join(cwd, "data"), "--port", "0", "--tcp-port", "0"]

/** Runs `kiris serve` to its end; the HTTP port comes from the configuration under test, not a flag. */
const serveFails = (text: string, env: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const { cwd, file, home } = workdir(text)
    const run = yield* runKiris(["serve", "--data-dir", path.join(cwd, "data"), "--tcp-port", "0"], { cwd, env: { HOME: home, ...env } })
    return { ...run, file }
  })

describe("kiris serve: configuration errors", () => {
  it.live(
    "a config file that is not JSON: the file and where it breaks",
    () =>
      Effect.gen(function* () {
        const run = yield* serveFails('{\n  "port": 1,\n}\n')
        assert.strictEqual(run.stderr, `error: ${run.file}: not valid JSON (Expected double-quoted property name at line 3 column 1)\n`)
        assert.strictEqual(run.code, 1)
      }),
    60_000
  )

  it.live(
    "a key of the wrong type in the file: the file, the key and what was expected",
    () =>
      Effect.gen(function* () {
        const run = yield* serveFails(JSON.stringify({ port: "abc" }))
        assert.strictEqual(run.stderr, `error: ${run.file}: port: expected an integer, got "abc"\n`)
        assert.strictEqual(run.code, 1)
      }),
    60_000
  )

  it.live(
    "a wrong type from KIRIS_PORT: the variable and what was expected",
    () =>
      Effect.gen(function* () {
        const run = yield* serveFails("{}", { KIRIS_PORT: "abc" })
        assert.strictEqual(run.stderr, `error: KIRIS_PORT: expected an integer, got "abc"\n`)
        assert.strictEqual(run.code, 1)
      }),
    60_000
  )

  it.scopedLive(
    "an unknown key is a warning naming the file and the key, and the hub still starts",
    () =>
      Effect.gen(function* () {
        const { cwd, file, home } = workdir(JSON.stringify({ prot: 1 }))
        const proc = yield* spawnKiris(serveArgs(cwd), { cwd, env: { HOME: home } })
        yield* proc.waitForLine(LISTENING, "60 seconds")
        assert.strictEqual(proc.stderr(), `warning: ${file}: unknown key "prot" (ignored; did you mean "port"?)\n`)
        proc.child.kill("SIGTERM")
        const exit = yield* proc.exited("15 seconds")
        assert.deepStrictEqual(exit, { code: 0, signal: null }, proc.stderr())
      }),
    60_000
  )
})
