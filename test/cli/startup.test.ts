import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { tempDir } from "../support/Hub.js"
import { runKiris, serveKiris } from "../support/KirisProcess.js"

/**
 * Each command loads only what it needs: `--help`, the client commands and `kiris worker` start
 * without the AI SDK, SQLite or the hub's layers. The modules a process loads are recorded by a
 * module hook (`--import` through NODE_OPTIONS) that appends every loaded URL to a file.
 */

const RECORDER = `
import { register } from "node:module"
register(${JSON.stringify(
  "data:text/javascript," +
    encodeURIComponent(`
import { appendFileSync } from "node:fs"
let file
export function initialize(data) { file = data.file }
export async function load(url, context, next) {
  appendFileSync(file, url + "\\n")
  return next(url, context)
}`)
)}, { data: { file: process.env.KIRIS_TEST_MODULE_LOG } })
`

/** Modules that only running the hub, an agent or a worker's executors may load. */
const HEAVY = /\/node_modules\/(ai|@ai-sdk\/[^/]+|better-sqlite3|@effect\/sql-sqlite-node)\//

/** Runs `kiris …args` with the recorder and returns the URLs of the modules it loaded. */
const loadedBy = <R>(dir: string, name: string, run: (env: Record<string, string>) => Effect.Effect<unknown, never, R>) =>
  Effect.gen(function* () {
    const recorder = path.join(dir, "recorder.mjs")
    fs.writeFileSync(recorder, RECORDER)
    const log = path.join(dir, `${name}.modules`)
    fs.writeFileSync(log, "")
    yield* run({ NODE_OPTIONS: `--import ${pathToFileURL(recorder).href}`, KIRIS_TEST_MODULE_LOG: log })
    return fs
      .readFileSync(log, "utf8")
      .split("\n")
      .filter((l) => l !== "")
  })

const heavyIn = (urls: ReadonlyArray<string>) => urls.filter((u) => HEAVY.test(u))

const commandLoads = (args: ReadonlyArray<string>, expectExit: (code: number | null) => boolean) =>
  Effect.gen(function* () {
    const dir = tempDir("kiris-startup-")
    let outcome = ""
    const urls = yield* loadedBy(dir, args[0]!.replace(/\W/g, ""), (env) =>
      runKiris(args, { cwd: dir, env }).pipe(
        Effect.tap((r) => {
          outcome = `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`
          assert.isTrue(expectExit(r.code), outcome)
        })
      )
    )
    // the recorder saw the program itself
    assert.isTrue(
      urls.some((u) => u.includes("/node_modules/@effect/cli/")),
      `no module recorded; ${outcome}`
    )
    return urls
  })

describe("what each command loads", () => {
  it.effect("kiris --help loads no AI SDK and no SQLite", () =>
    Effect.gen(function* () {
      const urls = yield* commandLoads(["--help"], (code) => code === 0)
      assert.deepStrictEqual(heavyIn(urls), [])
    })
  )

  it.effect("a client command (kiris whoami, no hub) loads no AI SDK and no SQLite", () =>
    Effect.gen(function* () {
      const urls = yield* commandLoads(["whoami", "--hub", "127.0.0.1:1", "--token", "nope"], (code) => code !== 0 && code !== null)
      assert.deepStrictEqual(heavyIn(urls), [])
    })
  )

  it.effect("kiris worker --help loads no AI SDK and no SQLite", () =>
    Effect.gen(function* () {
      const urls = yield* commandLoads(["worker", "--help"], (code) => code === 0)
      assert.deepStrictEqual(heavyIn(urls), [])
    })
  )

  it.scoped("the recorder sees SQLite and the AI SDK when the hub runs", () =>
    Effect.gen(function* () {
      const dir = tempDir("kiris-startup-")
      const dataDir = path.join(dir, "data")
      const urls = yield* loadedBy(dir, "serve", (env) =>
        Effect.gen(function* () {
          const hub = yield* serveKiris(dataDir, { env })
          hub.proc.child.kill("SIGTERM")
          yield* hub.proc.exited()
        })
      )
      const heavy = heavyIn(urls).join("\n")
      assert.include(heavy, "/node_modules/better-sqlite3/")
      assert.include(heavy, "/node_modules/ai/")
    })
  )
})
