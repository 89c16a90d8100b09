import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schedule } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { makeHubClient } from "../../src/client/HubClient.js"
import { tempDir } from "../support/Hub.js"
import { runKiris, spawnKiris } from "../support/KirisProcess.js"

/** `kiris serve` as a real process: what it prints, the files it writes, and a clean SIGTERM shutdown. */

const LISTENING = /^kiris listening http=http:\/\/127\.0\.0\.1:(\d+) tcp=127\.0\.0\.1:(\d+)$/
const CREATED = /^kiris created user admin; admin API key written to (.+) \(password in (.+)\)$/

const serveArgs = (dataDir: string) => ["serve", "--data-dir", dataDir, "--port", "0", "--tcp-port", "0"]

const mode = (file: string) => fs.statSync(file).mode & 0o777

/** Starts `kiris serve`, waits for its listening line, and returns the ports and everything it printed. */
const serve = (dataDir: string) =>
  Effect.gen(function* () {
    const proc = yield* spawnKiris(serveArgs(dataDir), { cwd: tempDir("kiris-cwd-") })
    const listening = yield* proc.waitForLine(LISTENING)
    return { proc, httpPort: Number(listening[1]), tcpPort: Number(listening[2]) }
  })

const stop = (proc: Effect.Effect.Success<ReturnType<typeof serve>>["proc"]) =>
  Effect.gen(function* () {
    proc.child.kill("SIGTERM")
    const exit = yield* proc.exited("15 seconds")
    assert.deepStrictEqual(exit, { code: 0, signal: null }, proc.stderr())
  })

const whoamiOverTcp = (tcpPort: number, token: string) =>
  Effect.scoped(Effect.flatMap(makeHubClient({ transport: "tcp", host: "127.0.0.1", port: tcpPort }, token), (c) => c.user.whoami()))

describe("kiris serve (process)", () => {
  it.scopedLive(
    "first start writes the admin credentials (0600), announces both ports, serves /healthz and exits 0 on SIGTERM",
    () =>
      Effect.gen(function* () {
        const dataDir = path.join(tempDir(), "data")
        const { httpPort, proc, tcpPort } = yield* serve(dataDir)

        const lines = proc.stdout().split("\n")
        const created = lines.map((l) => l.match(CREATED)).find((m) => m !== null)
        assert.isDefined(created, proc.stdout())
        const [, keyFile, passwordFile] = created!
        assert.strictEqual(keyFile, path.join(dataDir, "admin.key"))
        assert.strictEqual(passwordFile, path.join(dataDir, "admin.password"))
        assert.strictEqual(mode(keyFile!), 0o600)
        assert.strictEqual(mode(passwordFile!), 0o600)
        const adminKey = fs.readFileSync(keyFile!, "utf8").trim()
        assert.match(adminKey, /^kiris_\S{20,}$/)
        assert.notInclude(proc.stdout(), adminKey)

        const health = yield* Effect.promise(() => fetch(`http://127.0.0.1:${httpPort}/healthz`))
        assert.strictEqual(health.status, 200)
        assert.strictEqual(yield* Effect.promise(() => health.text()), "ok")

        const me = yield* whoamiOverTcp(tcpPort, adminKey)
        assert.deepStrictEqual([me.name, me.isAdmin], ["admin", true])

        // A unary request in flight when SIGTERM arrives still gets its answer.
        const client = yield* makeHubClient({ transport: "tcp", host: "127.0.0.1", port: tcpPort }, adminKey)
        const project = yield* client.project.create({ name: "p", description: "" })
        const task = yield* client.task.enqueue({ projectId: project.id, kind: "noop", payload: {} })
        const waiting = yield* Effect.fork(client.task.wait({ taskIds: [task.id], timeoutMs: 1500 }))
        yield* Effect.promise(() => fetch(`http://127.0.0.1:${httpPort}/metrics`).then((r) => r.text())).pipe(
          Effect.filterOrFail((text) => /^kiris_rpc_in_flight 1$/m.test(text)),
          Effect.retry({ schedule: Schedule.spaced("20 millis"), times: 250 })
        )
        proc.child.kill("SIGTERM")
        const answered = yield* Fiber.join(waiting)
        assert.deepStrictEqual(
          answered.map((t) => [t.id, t.status]),
          [[task.id, "queued"]]
        )
        const exit = yield* proc.exited("15 seconds")
        assert.deepStrictEqual(exit, { code: 0, signal: null }, proc.stderr())
      }),
    60_000
  )

  it.scopedLive(
    "a second start on the same data dir keeps the admin and prints no created line; a taken port is one clear error",
    () =>
      Effect.gen(function* () {
        const dataDir = path.join(tempDir(), "data")
        const first = yield* serve(dataDir)
        assert.match(first.proc.stdout(), /^kiris created user admin/m)
        yield* stop(first.proc)
        const adminKey = fs.readFileSync(path.join(dataDir, "admin.key"), "utf8").trim()

        const second = yield* serve(dataDir)
        assert.notMatch(second.proc.stdout(), /created/)
        assert.deepStrictEqual(
          second.proc
            .stdout()
            .split("\n")
            .filter((l) => l !== ""),
          [`kiris listening http=http://127.0.0.1:${second.httpPort} tcp=127.0.0.1:${second.tcpPort}`]
        )
        assert.strictEqual(fs.readFileSync(path.join(dataDir, "admin.key"), "utf8").trim(), adminKey)
        assert.strictEqual((yield* whoamiOverTcp(second.tcpPort, adminKey)).name, "admin")

        const clash = yield* runKiris(["serve", "--data-dir", path.join(tempDir(), "data"), "--port", "0", "--tcp-port", String(second.tcpPort)], {
          cwd: tempDir("kiris-cwd-")
        })
        assert.strictEqual(clash.code, 1)
        assert.match(clash.stderr, /^error: cannot start the hub: listen EADDRINUSE.*$/m)
        yield* stop(second.proc)
      }),
    90_000
  )
})
