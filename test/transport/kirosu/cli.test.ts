import { assert, describe, it } from "@effect/vitest"
import { Data, Deferred, Duration, Effect } from "effect"
import * as childProcess from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { makeHubClient } from "../../../src/client/HubClient.js"
import { tempDir } from "../../support/Hub.js"
import { kirosuConnect } from "../../support/KirosuClient.js"

/** A test step that did not happen in time. */
class TestFailure extends Data.TaggedError("TestFailure")<{ readonly message: string }> {}

/** `kiris serve --kirosu-port …` as a real process: the flags reach the hub, and `shutdown` may stop it. */

const bin = path.join(import.meta.dirname, "..", "..", "..", "bin", "kiris.js")

const serve = (flags: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.gen(function* () {
    const dataDir = tempDir()
    const port = yield* Deferred.make<number, Error>()
    const exited = yield* Deferred.make<number | null>()
    const warned = yield* Deferred.make<string>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        childProcess.spawn(process.execPath, [bin, "serve", "--data-dir", dataDir, "--port", "0", "--tcp-port", "0", ...flags], {
          env: { ...process.env, ...env },
          stdio: ["ignore", "pipe", "pipe"]
        })
      ),
      (child) => Effect.sync(() => void (child.exitCode === null && child.kill("SIGTERM")))
    )
    let out = ""
    let err = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk
      const m = out.match(/^kiris kirosu listening tcp=(\S+):(\d+)$/m)
      if (m) Deferred.unsafeDone(port, Effect.succeed(Number(m[2])))
    })
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      err += chunk
      const m = err.match(/^kiris warning: .*$/m)
      if (m) Deferred.unsafeDone(warned, Effect.succeed(m[0]))
    })
    child.on("exit", (code) => {
      Deferred.unsafeDone(exited, Effect.succeed(code))
      Deferred.unsafeDone(port, Effect.fail(new TestFailure({ message: `kiris exited (${code}) before listening:\n${out}\n${err}` })))
    })
    const listening = yield* Deferred.await(port).pipe(
      Effect.timeoutFail({ duration: Duration.seconds(30), onTimeout: () => new TestFailure({ message: `no listening line:\n${out}\n${err}` }) })
    )
    const tcpPort = Number(out.match(/^kiris listening http=\S+ tcp=\S+:(\d+)$/m)?.[1])
    return {
      port: listening,
      /** The host of the `kiris kirosu listening` line. */
      host: out.match(/^kiris kirosu listening tcp=(\S+):\d+$/m)?.[1],
      /** The first `kiris warning:` line on stderr. */
      warning: Deferred.await(warned).pipe(
        Effect.timeoutFail({ duration: Duration.seconds(20), onTimeout: () => new TestFailure({ message: `no warning line:\n${out}\n${err}` }) })
      ),
      /** A Kiris RPC client of this hub, as the admin. */
      kiris: () =>
        makeHubClient({ transport: "tcp", host: "127.0.0.1", port: tcpPort }, fs.readFileSync(path.join(dataDir, "admin.key"), "utf8").trim()),
      exited: Deferred.await(exited).pipe(
        Effect.timeoutFail({ duration: Duration.seconds(20), onTimeout: () => new TestFailure({ message: "kiris did not exit" }) })
      ),
      running: () => child.exitCode === null,
      output: () => out + err
    }
  })

describe("kiris serve --kirosu-port", () => {
  it.scopedLive("takes the key from --kirosu-key and stops on shutdown with --kirosu-allow-shutdown", () =>
    Effect.gen(function* () {
      const hub = yield* serve(["--kirosu-port", "0", "--kirosu-key", "flag-key", "--kirosu-allow-shutdown", "--kirosu-project", "legacy"])
      const denied = yield* kirosuConnect(hub.port)
      assert.include((yield* denied.call("stats")).error?.message, "Invalid KIRO_SWARM_KEY")
      const c = yield* kirosuConnect(hub.port, { key: "flag-key" })
      assert.strictEqual((yield* c.ok("enqueue", { prompt: "x" })).task_id, 1)
      const kiris = yield* hub.kiris()
      const projects = yield* kiris.project.list()
      assert.deepStrictEqual(
        projects.map((p) => p.name),
        ["legacy"]
      )
      assert.deepStrictEqual(yield* c.ok("shutdown"), { ok: true })
      yield* c.closed
      assert.strictEqual(yield* hub.exited, 0, hub.output())
    })
  )

  it.scopedLive("takes the key from KIRO_SWARM_KEY; without --kirosu-allow-shutdown, shutdown only closes the connection", () =>
    Effect.gen(function* () {
      const hub = yield* serve(["--kirosu-port", "0"], { KIRO_SWARM_KEY: "env-key" })
      const c = yield* kirosuConnect(hub.port, { key: "env-key" })
      assert.deepStrictEqual(yield* c.ok("shutdown"), { ok: true })
      yield* c.closed
      const again = yield* kirosuConnect(hub.port, { key: "env-key" })
      assert.strictEqual((yield* again.ok("stats")).stats.total_tasks, 0)
      assert.isTrue(hub.running())
    })
  )

  it.scopedLive("without a key: one warning line on stderr, the Kirosu port on loopback despite --host 0.0.0.0, python refused", () =>
    Effect.gen(function* () {
      const hub = yield* serve(["--kirosu-port", "0", "--host", "0.0.0.0"])
      assert.strictEqual(hub.host, "127.0.0.1")
      const warning = yield* hub.warning
      assert.match(warning, /^kiris warning: the Kirosu port has no key: .*python tasks are refused.*--kirosu-key/)
      assert.strictEqual(hub.output().match(/^kiris warning:/gm)?.length, 1, hub.output())
      const c = yield* kirosuConnect(hub.port)
      assert.include((yield* c.call("enqueue", { prompt: "print(1)", type: "python" })).error?.message, "python tasks are refused")
      assert.strictEqual((yield* c.ok("enqueue", { prompt: "hi" })).task_id, 1)
    })
  )
})
