import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as path from "node:path"
import { tempDir } from "../support/Hub.js"
import { runKiris, serveKiris } from "../support/KirisProcess.js"
import { packageRecorder } from "../support/LoadedPackages.js"

/**
 * Each command loads only what it needs: `--help`, the client commands and `kiris worker` start
 * without the AI SDK, SQLite or the hub's layers (test/support/LoadedPackages.ts records them).
 */

/** Packages that only running the hub, an agent or a worker's executors may load. */
const HEAVY = /^(ai|@ai-sdk\/[^/]+|better-sqlite3|@effect\/sql-sqlite-node)$/

const heavyIn = (packages: ReadonlyArray<string>) => packages.filter((p) => HEAVY.test(p))

const commandLoads = (args: ReadonlyArray<string>, expectExit: (code: number | null) => boolean) =>
  Effect.gen(function* () {
    const dir = tempDir("kiris-startup-")
    const recorder = packageRecorder()
    const r = yield* runKiris(args, { cwd: dir, env: { NODE_OPTIONS: recorder.nodeOptions } })
    const outcome = `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`
    assert.isTrue(expectExit(r.code), outcome)
    // the recorder saw the program itself
    assert.include(recorder.packages(), "@effect/cli", `no module recorded; ${outcome}`)
    return recorder.packages()
  })

describe("what each command loads", () => {
  it.effect("kiris --help loads no AI SDK and no SQLite", () =>
    Effect.gen(function* () {
      const packages = yield* commandLoads(["--help"], (code) => code === 0)
      assert.deepStrictEqual(heavyIn(packages), [])
    })
  )

  it.effect("a client command (kiris whoami, no hub) loads no AI SDK and no SQLite", () =>
    Effect.gen(function* () {
      const packages = yield* commandLoads(["whoami", "--hub", "127.0.0.1:1", "--token", "nope"], (code) => code !== 0 && code !== null)
      assert.deepStrictEqual(heavyIn(packages), [])
    })
  )

  it.effect("kiris worker --help loads no AI SDK and no SQLite", () =>
    Effect.gen(function* () {
      const packages = yield* commandLoads(["worker", "--help"], (code) => code === 0)
      assert.deepStrictEqual(heavyIn(packages), [])
    })
  )

  it.scoped("the recorder sees SQLite and the AI SDK when the hub runs", () =>
    Effect.gen(function* () {
      const recorder = packageRecorder()
      const hub = yield* serveKiris(path.join(tempDir("kiris-startup-"), "data"), { env: { NODE_OPTIONS: recorder.nodeOptions } })
      hub.proc.child.kill("SIGTERM")
      yield* hub.proc.exited()
      const heavy = heavyIn(recorder.packages())
      assert.include(heavy, "better-sqlite3")
      assert.include(heavy, "ai")
    })
  )
})
