import { assert, describe, it } from "@effect/vitest"
import { Console, Context, Effect, Option, Redacted } from "effect"
import { pythonNeedsKey } from "../../../src/transport/kirosu/KirosuAdapter.js"
import { isLoopbackHost, KirosuServer, kirosuBindHost, noKeyWarning } from "../../../src/transport/kirosu/KirosuServer.js"
import { startHub } from "../../support/Hub.js"
import { kirosuConnect } from "../../support/KirosuClient.js"

/** What the Kirosu port allows with and without its shared key. */

const kirosuHub = (overrides: Parameters<typeof startHub>[0] = {}) =>
  Effect.gen(function* () {
    const hub = yield* startHub({ kirosuPort: Option.some(0), ...overrides })
    const address = Option.getOrThrow(Context.get(hub.context, KirosuServer).address)
    return { hub, port: address.port, hostname: address.hostname }
  })

/** Runs `effect` with a console that records what goes to stderr (and still shows stdout). */
const capturingStderr = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const base = yield* Effect.console
    const lines: Array<string> = []
    const console: Console.Console = { ...base, error: (...args) => Effect.sync(() => void lines.push(args.map(String).join(" "))) }
    const result = yield* Effect.withConsole(effect, console)
    return { result, stderr: lines }
  })

describe("kirosu port trust", () => {
  it.scopedLive("the hub warns once at start when the Kirosu port has no key, and not when it has one", () =>
    Effect.gen(function* () {
      const open = yield* capturingStderr(kirosuHub())
      assert.deepStrictEqual(
        open.stderr.filter((l) => l.startsWith("kiris warning")),
        [noKeyWarning]
      )
      assert.match(noKeyWarning, /^kiris warning: the Kirosu port has no key: .*python tasks are refused.*--kirosu-key/)
      const keyed = yield* capturingStderr(kirosuHub({ kirosuKey: Option.some(Redacted.make("k")) }))
      assert.deepStrictEqual(keyed.stderr, [])
    })
  )

  it.scopedLive("without a key: python enqueues are refused with a Kirosu error; chat and human tasks are still taken", () =>
    Effect.gen(function* () {
      const { port } = yield* kirosuHub()
      const c = yield* kirosuConnect(port)
      for (const type of ["python", "PYTHON", " Python "]) {
        const refused = yield* c.call("enqueue", { prompt: "import os; os.system('id')", type })
        assert.strictEqual(refused.result, null)
        assert.deepStrictEqual(refused.error, { message: pythonNeedsKey })
      }
      const chat = (yield* c.ok("enqueue", { prompt: "hello" })).task_id
      const human = (yield* c.ok("enqueue", { prompt: "a person decides", type: "human" })).task_id
      const listed = (yield* c.ok("list", { limit: 0 })).tasks as ReadonlyArray<{ task_id: number; type: string }>
      assert.deepStrictEqual(
        listed.map((t) => [t.task_id, t.type]),
        [
          [human, "human"],
          [chat, "chat"]
        ],
        "no python task reached the queue"
      )
    })
  )

  it.scopedLive("with a key: python enqueues are accepted as before", () =>
    Effect.gen(function* () {
      const { port } = yield* kirosuHub({ kirosuKey: Option.some(Redacted.make("k")) })
      const c = yield* kirosuConnect(port, { key: "k" })
      const id = (yield* c.ok("enqueue", { prompt: "print(1)", type: "python" })).task_id
      const leased = (yield* c.ok("lease")).tasks[0]
      assert.deepStrictEqual([leased.task_id, leased.type, leased.prompt], [id, "python", "print(1)"])
    })
  )

  it.scopedLive("without a key the port binds to loopback even when the hub's host is 0.0.0.0; with a key it follows host", () =>
    Effect.gen(function* () {
      const open = yield* kirosuHub({ host: "0.0.0.0" })
      assert.strictEqual(open.hostname, "127.0.0.1")
      const c = yield* kirosuConnect(open.port)
      assert.strictEqual((yield* c.ok("stats")).stats.total_tasks, 0)
      const keyed = yield* kirosuHub({ host: "0.0.0.0", kirosuKey: Option.some(Redacted.make("k")) })
      assert.strictEqual(keyed.hostname, "0.0.0.0")
    })
  )

  it("loopback hosts are kept as they are; anything wider becomes 127.0.0.1 without a key", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1", "[::1]", "::ffff:127.0.0.1"]) {
      assert.isTrue(isLoopbackHost(host), host)
      assert.strictEqual(kirosuBindHost(host, false), host)
    }
    for (const host of ["0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "example.com", "127.0.0.1.example.com", ""]) {
      assert.isFalse(isLoopbackHost(host), host)
      assert.strictEqual(kirosuBindHost(host, false), "127.0.0.1")
      assert.strictEqual(kirosuBindHost(host, true), host)
    }
  })
})
