import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Queue, Stream } from "effect"
import * as net from "node:net"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { WebSocket } from "ws"
import type { SubscriptionItem } from "../../src/domain/Event.js"
import { startHub, type TestHub } from "../support/Hub.js"

/**
 * Hostile frames from several TCP and WebSocket connections at once (malformed, oversized,
 * truncated, wrong-typed, unknown tags, duplicate and unknown ids, random bytes), while a
 * well-behaved client keeps calling and holds a subscription. Set FUZZ_SEED to replay a run.
 */

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32))
const FRAMES_PER_CONNECTION = 2_600
const CONNECTIONS_PER_TRANSPORT = 4
const BATCH = 100
const MAX_FRAME = 64 * 1024

/** mulberry32: small, fast and good enough to pick frames. */
const prng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const makeFrames = (random: () => number, token: string) => {
  const int = (n: number) => Math.floor(random() * n)
  const pick = <A>(items: ReadonlyArray<A>): A => items[int(items.length)]!
  const ascii = (n: number) => Array.from({ length: n }, () => String.fromCharCode(32 + int(95))).join("")
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)))
  const tags = ["user.whoami", "project.list", "task.list", "events.subscribe", "task.get", "no.such.rpc", "", "__proto__", "constructor"]
  const ids = ["1", "2", "3", "0", "18446744073709551615", "9".repeat(20), "9".repeat(400), "-1", "1.5", "", " 1", "01"]
  const anyValue = (): unknown =>
    pick<() => unknown>([
      () => null,
      () => int(1e9) - 5e8,
      () => ascii(int(20)),
      () => [int(3), ascii(3)],
      () => ({ [ascii(4)]: ascii(4) }),
      () => true,
      () => 1e308 * 10
    ])()
  const auth = (): Array<[string, string]> => pick([[["authorization", `Bearer ${token}`]], [["authorization", "Bearer kiris_nope"]], []])
  const valid = () =>
    JSON.stringify({
      _tag: "Request",
      id: String(int(40)),
      tag: pick(tags.slice(0, 4)),
      payload: pick([{}, undefined, { projectId: "prj_nope" }]),
      headers: auth()
    })

  /** One frame, as text (a line on TCP, a message on WebSocket) or raw bytes. */
  return (): string | Buffer => {
    switch (int(14)) {
      case 0:
        return pick([
          "{",
          "}",
          "[",
          "null",
          "true",
          "42",
          '"str"',
          '{"_tag":',
          "{'_tag':'Ping'}",
          "\u0000\u0001",
          '{"_tag":"Request"',
          ascii(int(200))
        ])
      case 1:
        return valid().slice(0, 1 + int(60))
      case 2:
        return JSON.stringify({
          _tag: "Request",
          id: pick<unknown>([7, null, [], {}, true, ...ids]),
          tag: pick<unknown>([...tags, 5, null, {}]),
          payload: anyValue(),
          headers: pick<unknown>([[], [[1, 2]], "x", {}, [["a"]], auth()])
        })
      case 3:
        return JSON.stringify({
          _tag: pick(["Bogus", "request", "REQUEST", "Exit", "Chunk", "Defect", "Pong", "ClientEnd", ascii(8)]),
          id: pick(ids),
          requestId: pick(ids)
        })
      case 4:
        return JSON.stringify({
          _tag: "Request",
          id: pick(["1", "2", "3"]),
          tag: pick(["events.subscribe", "user.whoami"]),
          payload: { projectId: "prj_nope" },
          headers: auth()
        })
      case 5:
        return JSON.stringify({ _tag: pick(["Ack", "Interrupt"]), requestId: pick<unknown>([...ids, String(1000 + int(1e6)), 5, null]) })
      case 6:
        return bytes(1 + int(300))
      case 7:
        return int(20) === 0
          ? "x".repeat(MAX_FRAME + 1 + int(MAX_FRAME / 2))
          : JSON.stringify({
              _tag: "Request",
              id: "5",
              tag: "project.create",
              payload: { name: ascii(64) },
              headers: [["authorization", "Bearer kiris_nope"]]
            })
      case 8:
        return "[".repeat(1 + int(5000)) + "]".repeat(int(5000))
      case 9:
        return JSON.stringify({ _tag: "Request", id: pick(ids), tag: "user.whoami", headers: auth(), extra: anyValue(), payload: anyValue() })
      case 10:
        return pick([JSON.stringify({ _tag: "Ping" }), JSON.stringify({ _tag: "Eof" }), "", "   ", "\t"])
      case 11:
        return valid()
      case 12:
        return JSON.stringify([{ _tag: "Ping" }, { _tag: "Ping" }])
      default:
        return "\ud800" + ascii(int(10)) + "é😀" + "\\u0000"
    }
  }
}

/** A hostile connection: sends anything, reads and discards everything; `settled` waits for the hub to catch up. */
interface Fuzzer {
  readonly send: (frame: string | Buffer) => void
  /** Sends a Ping and waits for its Pong, or for the hub to close the connection. */
  readonly settled: Effect.Effect<void>
  readonly closed: () => boolean
}

/** The transport-independent part of a fuzzer: waiting for a Pong, and noticing the hub closed. */
const fuzzerState = (write: (frame: string | Buffer) => void, ping: () => void) => {
  let closed = false
  let waiting: (() => void) | undefined
  const wake = () => {
    const w = waiting
    waiting = undefined
    w?.()
  }
  const fuzzer: Fuzzer = {
    send: (frame) => {
      if (!closed) write(frame)
    },
    settled: Effect.async<void>((done) => {
      if (closed) return done(Effect.void)
      waiting = () => done(Effect.void)
      ping()
    }),
    closed: () => closed
  }
  const onClose = () => {
    closed = true
    wake()
  }
  return { fuzzer, onPong: wake, onClose }
}

const fuzzTcp = (port: number) =>
  Effect.async<Fuzzer>((resume) => {
    const socket = net.connect({ host: "127.0.0.1", port })
    const state = fuzzerState(
      (frame) => socket.write(typeof frame === "string" ? frame + "\n" : Buffer.concat([frame, Buffer.from("\n")])),
      () => socket.write('{"_tag":"Ping"}\n')
    )
    // a Pong may arrive split across reads: keep the last bytes of the previous one
    let tail = ""
    socket.on("data", (d: Buffer) => {
      const text = tail + d.toString("latin1")
      tail = text.slice(-8)
      if (text.includes('"Pong"')) state.onPong()
    })
    socket.on("error", () => {})
    socket.on("close", state.onClose)
    socket.once("connect", () => resume(Effect.succeed(state.fuzzer)))
  })

const fuzzWs = (url: string) =>
  Effect.async<Fuzzer>((resume) => {
    const ws = new WebSocket(url)
    const state = fuzzerState(
      (frame) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(frame, { binary: typeof frame !== "string" })
      },
      () => ws.send('{"_tag":"Ping"}')
    )
    ws.on("message", (data) => {
      if (data.toString().includes('"Pong"')) state.onPong()
    })
    ws.on("error", () => {})
    ws.on("close", state.onClose)
    ws.once("open", () => resume(Effect.succeed(state.fuzzer)))
  })

/** Sends `frames` frames in batches, reconnecting whenever the hub closes the connection. */
const fuzz = (connect: Effect.Effect<Fuzzer>, next: () => string | Buffer, frames: number) =>
  Effect.gen(function* () {
    let conn = yield* connect
    let reconnects = 0
    for (let sent = 0; sent < frames;) {
      if (conn.closed()) {
        conn = yield* connect
        reconnects++
      }
      for (let i = 0; i < BATCH && sent < frames; i++, sent++) conn.send(next())
      yield* conn.settled.pipe(
        Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("the hub did not answer a Ping after a batch") })
      )
    }
    return reconnects
  })

const retainedBytes = () => {
  v8.setFlagsFromString("--expose-gc")
  ;(vm.runInNewContext("gc") as () => void)()
  const m = process.memoryUsage()
  return { rss: m.rss, retained: m.heapUsed + m.external }
}

const goodClient = (hub: TestHub) =>
  Effect.gen(function* () {
    const client = yield* hub.tcpClient()
    const project = yield* client.project.create({ name: "steady" })
    const items = yield* Queue.unbounded<SubscriptionItem>()
    const subscription = yield* client.events.subscribe({ projectId: project.id }).pipe(
      Stream.runForEach((item) => Queue.offer(items, item)),
      Effect.forkScoped
    )
    const ready = yield* Queue.take(items)
    assert.strictEqual(ready._tag, "Ready")
    const stop = yield* Deferred.make<void>()
    let calls = 0
    const caller = yield* Effect.gen(function* () {
      while (!(yield* Deferred.isDone(stop))) {
        const me = yield* client.user.whoami()
        assert.strictEqual(me.name, "admin")
        calls++
      }
    }).pipe(Effect.fork)
    return { client, project, items, subscription, stop, caller, calls: () => calls }
  })

describe("wire fuzzing", () => {
  it.scopedLive(
    "hostile frames on TCP and WebSocket leave the hub up, a good client unaffected and memory where it was",
    () =>
      Effect.gen(function* () {
        const hub = yield* startHub({ maxFrameBytes: MAX_FRAME, maxInFlightPerConnection: 16 })
        const good = yield* goodClient(hub)
        const start = retainedBytes()

        const random = prng(SEED)
        const next = makeFrames(random, hub.adminKey)
        const fuzzers = [
          ...Array.from({ length: CONNECTIONS_PER_TRANSPORT }, () => fuzz(fuzzTcp(hub.tcpPort), next, FRAMES_PER_CONNECTION)),
          ...Array.from({ length: CONNECTIONS_PER_TRANSPORT }, () => fuzz(fuzzWs(hub.wsUrl), next, FRAMES_PER_CONNECTION))
        ]
        yield* Effect.all(fuzzers, { concurrency: "unbounded" })

        yield* Deferred.succeed(good.stop, undefined)
        const caller = yield* Fiber.await(good.caller)
        assert.isTrue(Exit.isSuccess(caller), `the good client's calls failed: ${Exit.isFailure(caller) ? Cause.pretty(caller.cause) : ""}`)
        assert.isAbove(good.calls(), 0)

        // the subscription is still live: a change made now reaches it
        yield* good.client.user.create({ name: "after-fuzz", password: "after-fuzz-password", isAdmin: false })
        yield* good.client.project.addMember({ projectId: good.project.id, user: "after-fuzz", role: "viewer" })
        for (;;) {
          const item = yield* Queue.take(good.items).pipe(
            Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the good subscription saw no event after the fuzzing") })
          )
          assert.notStrictEqual(item._tag, "Lagged")
          if (item._tag === "Event" && item.event.event._tag === "MemberAdded") break
        }
        assert.isNull(good.subscription.unsafePoll(), "the good subscription ended")

        const fresh = yield* hub.wsClient()
        assert.strictEqual((yield* fresh.user.whoami()).name, "admin")

        const end = retainedBytes()
        const grownMiB = (end.retained - start.retained) / 2 ** 20
        assert.isBelow(
          grownMiB,
          64,
          `retained memory grew ${grownMiB.toFixed(1)} MiB (RSS ${(start.rss / 2 ** 20).toFixed(0)} → ${(end.rss / 2 ** 20).toFixed(0)} MiB)`
        )
      }).pipe(
        Effect.onExit((exit) => (Exit.isFailure(exit) ? Effect.sync(() => console.error(`wire fuzzing failed with FUZZ_SEED=${SEED}`)) : Effect.void))
      ),
    { timeout: 60_000 }
  )
})
