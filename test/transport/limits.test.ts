import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Schedule, type Scope } from "effect"
import * as net from "node:net"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import type { TaskId } from "../../src/domain/Ids.js"
import { EnqueueTask } from "../../src/domain/Task.js"
import { EventBus } from "../../src/events/EventBus.js"
import { Metrics } from "../../src/transport/metrics/Metrics.js"
import { startHub, type TestHub } from "../support/Hub.js"
import { rawTcp, rawWebSocket, type RawConnection, type RawOptions, request, type ServerMessage } from "../support/RawRpc.js"

/**
 * What one client can hold on the hub, measured on a real hub with hand-written frames: requests
 * in flight, replies it does not read, WebSocket message size, request ids, time to authenticate,
 * and the backlog of an event subscriber that never acks.
 */

type Open = (hub: TestHub, options?: RawOptions) => Effect.Effect<RawConnection, never, Scope.Scope>
const transports: ReadonlyArray<readonly [string, Open]> = [
  ["TCP NDJSON", (hub, options) => rawTcp(hub.tcpPort, options)],
  ["WebSocket", (hub, options) => rawWebSocket(hub.wsUrl, options)]
]

const exitOf = (conn: RawConnection, id: string) => conn.next(`Exit of request ${id}`, (m) => m._tag === "Exit" && m.requestId === id)
const chunkOf = (conn: RawConnection, id: string, what: string, match: (value: Record<string, unknown>) => boolean) =>
  conn.next(
    `Chunk of ${id} with ${what}`,
    (m) => m._tag === "Chunk" && m.requestId === id && (m.values as Array<Record<string, unknown>>).some(match)
  )
const defect = (conn: RawConnection, what: string, pattern: RegExp) =>
  conn.next(`Defect (${what})`, (m) => m._tag === "Defect" && pattern.test(String(m.defect)))
const exitTag = (m: ServerMessage) => (m.exit as { _tag: string })._tag
const dieText = (m: ServerMessage) => String((m.exit as { cause?: { _tag?: string; defect?: unknown } }).cause?.defect)

/** Polls `check` until it holds, failing after `ms`. */
const eventually = (what: string, check: () => boolean, ms = 10_000) =>
  Effect.suspend(() => (check() ? Effect.void : Effect.fail(new Error(`timed out waiting for ${what}`)))).pipe(
    Effect.retry({ schedule: Schedule.spaced("10 millis"), times: Math.ceil(ms / 10) }),
    Effect.orDie
  )

const memberAdded = (name: string) => (v: Record<string, unknown>) => {
  const body = (v.event as { event?: { _tag?: string; member?: { userName?: string } } } | undefined)?.event
  return v._tag === "Event" && body?._tag === "MemberAdded" && body.member?.userName === name
}

for (const [name, open] of transports) {
  describe(`limits over ${name}`, () => {
    it.scopedLive("a request beyond the in-flight limit gets an error reply and the connection's other requests keep working", () =>
      Effect.gen(function* () {
        const hub = yield* startHub({ maxInFlightPerConnection: 4 })
        const admin = yield* hub.tcpClient()
        const project = yield* admin.project.create({ name: "bounded" })
        const conn = yield* open(hub)
        for (const id of ["1", "2", "3", "4"]) {
          yield* conn.send(request(id, "events.subscribe", { projectId: project.id }, hub.adminKey))
          yield* chunkOf(conn, id, "Ready", (v) => v._tag === "Ready")
        }

        yield* conn.send(request("5", "user.whoami", undefined, hub.adminKey))
        const refused = yield* exitOf(conn, "5")
        assert.strictEqual(exitTag(refused), "Failure")
        assert.strictEqual(dieText(refused), "too many requests in flight on this connection (limit 4)")

        yield* admin.user.create({ name: "member", password: "member-password", isAdmin: false })
        yield* admin.project.addMember({ projectId: project.id, user: "member", role: "viewer" })
        yield* chunkOf(conn, "1", "MemberAdded", memberAdded("member"))

        yield* conn.send({ _tag: "Interrupt", requestId: "4" })
        yield* exitOf(conn, "4")
        yield* conn.send(request("6", "user.whoami", undefined, hub.adminKey))
        assert.strictEqual(exitTag(yield* exitOf(conn, "6")), "Success")
        assert.isFalse(conn.closed())
      })
    )

    it.scopedLive("a request reusing the id of an open stream gets a Defect and the stream keeps working", () =>
      Effect.gen(function* () {
        const hub = yield* startHub()
        const admin = yield* hub.tcpClient()
        const project = yield* admin.project.create({ name: "ids" })
        const conn = yield* open(hub)
        yield* conn.send(request("1", "events.subscribe", { projectId: project.id }, hub.adminKey))
        yield* chunkOf(conn, "1", "Ready", (v) => v._tag === "Ready")

        yield* conn.send(request("1", "user.whoami", undefined, hub.adminKey))
        yield* defect(conn, "duplicate id", /^duplicate request id: 1 is still in use by an open events\.subscribe request/)

        yield* admin.user.create({ name: "later", password: "later-password", isAdmin: false })
        yield* admin.project.addMember({ projectId: project.id, user: "later", role: "viewer" })
        yield* chunkOf(conn, "1", "MemberAdded", memberAdded("later"))

        yield* conn.send(request("2", "user.whoami", undefined, hub.adminKey))
        assert.strictEqual(exitTag(yield* exitOf(conn, "2")), "Success")
        yield* conn.send({ _tag: "Interrupt", requestId: "1" })
        assert.strictEqual(exitTag(yield* exitOf(conn, "1")), "Failure")
      })
    )

    it.scopedLive("a connection without an authenticated request is closed after the auth timeout", () =>
      Effect.gen(function* () {
        const hub = yield* startHub({ authTimeoutSeconds: 1 })
        const good = yield* open(hub)
        yield* good.send(request("1", "user.whoami", undefined, hub.adminKey))
        assert.strictEqual(exitTag(yield* exitOf(good, "1")), "Success")

        const idle = yield* open(hub)
        const refused = yield* open(hub)
        yield* refused.send(request("1", "user.whoami", undefined, "kiris_wrong"))
        const unauthorized = yield* exitOf(refused, "1")
        assert.match(JSON.stringify(unauthorized.exit), /Unauthorized/)

        for (const conn of [idle, refused]) {
          yield* defect(conn, "auth timeout", /^connection closed: no authenticated request within 1 s/)
          yield* eventually("the connection to close", conn.closed)
        }
        // `good` connected before the other two, so its timer has fired too
        assert.isFalse(good.closed())
        yield* good.send(request("2", "user.whoami", undefined, hub.adminKey))
        assert.strictEqual(exitTag(yield* exitOf(good, "2")), "Success")
      })
    )

    it.scopedLive("a subscriber that never acks gets Lagged, and the hub's memory stays bounded", () =>
      Effect.gen(function* () {
        v8.setFlagsFromString("--expose-gc")
        const gc = vm.runInNewContext("gc") as () => void
        const hub = yield* startHub({ subscriberBufferBytes: 1024 * 1024 })
        const admin = yield* hub.tcpClient()
        const project = yield* admin.project.create({ name: "lagging" })
        const conn = yield* open(hub, { ack: false })
        yield* conn.send(request("1", "events.subscribe", { projectId: project.id }, hub.adminKey))
        yield* chunkOf(conn, "1", "Ready", (v) => v._tag === "Ready")

        const bus = Context.get(hub.context, EventBus)
        const events = 200
        // what stays reachable after a full GC (RSS would also count freed pages the allocator keeps)
        const retained = () => {
          gc()
          const m = process.memoryUsage()
          return m.heapUsed + m.external
        }
        const before = retained()
        for (let i = 0; i < events; i++) {
          // a fresh 1 MiB string per event, as a worker's progress output would be
          const text = Buffer.alloc(1024 * 1024, 97 + (i % 26)).toString("latin1")
          yield* bus.publish(project.id, { _tag: "TaskProgress", taskId: "tsk_progress" as TaskId, parts: [text] })
        }
        const grown = (retained() - before) / 2 ** 20
        assert.isBelow(
          grown,
          events / 4,
          `the hub kept ${grown.toFixed(0)} MiB of ${events} MiB of events published to a subscriber that does not ack`
        )

        let missed = 0
        let received = 0
        let first = true
        while (missed + received < events) {
          yield* conn.send({ _tag: "Ack", requestId: "1" })
          const chunk = yield* conn.next("the next chunk", (m) => m._tag === "Chunk" && m.requestId === "1")
          const values = chunk.values as Array<{ _tag: string; missed?: number }>
          if (first) assert.strictEqual(values[0]?._tag, "Lagged")
          first = false
          for (const v of values) {
            if (v._tag === "Lagged") missed += v.missed ?? 0
            else if (v._tag === "Event") received++
          }
        }
        assert.isAbove(missed, events / 2)
        assert.strictEqual(missed + received, events)
      })
    )
  })
}

describe("limits on output and WebSocket messages", () => {
  it.scopedLive("a client that does not read its replies makes the hub stop starting its requests, then is disconnected", () =>
    Effect.gen(function* () {
      const hub = yield* startHub({ maxQueuedOutputBytes: 256 * 1024, outputStallSeconds: 1 })
      const admin = yield* hub.tcpClient()
      const project = yield* admin.project.create({ name: "slow" })
      const payload = "p".repeat(16 * 1024)
      yield* admin.task.enqueueBatch({
        tasks: Array.from({ length: 100 }, (_, i) => EnqueueTask.make({ projectId: project.id, kind: "noop", payload: { i, payload } }))
      })

      const socket = yield* Effect.acquireRelease(
        Effect.async<net.Socket>((resume) => {
          const s: net.Socket = net.connect({ host: "127.0.0.1", port: hub.tcpPort }, () => resume(Effect.succeed(s)))
        }),
        (s) => Effect.sync(() => s.destroy())
      )
      let closed = false
      socket.on("close", () => (closed = true))
      socket.on("error", () => {})
      socket.pause()
      const sent = 40
      for (let i = 1; i <= sent; i++) {
        socket.write(JSON.stringify(request(String(i), "task.list", { projectId: project.id, limit: 100 }, hub.adminKey)) + "\n")
      }
      const metrics = Context.get(hub.context, Metrics)
      // the admin client's connection is the only other one
      yield* eventually("the hub to drop the connection", () => metrics.value("kiris_open_connections", { transport: "tcp" }) === 1, 20_000)
      socket.resume()
      yield* eventually("the client to see the connection end", () => closed, 20_000)

      const started = metrics.value("kiris_rpc_calls_total", { tag: "task.list", outcome: "success" })
      assert.isBelow(started, sent, "every request was started although the client read nothing")
      const me = yield* admin.user.whoami()
      assert.strictEqual(me.name, "admin")
    })
  )

  it.scopedLive("a client that reads slowly still gets every reply in full", () =>
    Effect.gen(function* () {
      const hub = yield* startHub({ maxQueuedOutputBytes: 128 * 1024 })
      const admin = yield* hub.tcpClient()
      const project = yield* admin.project.create({ name: "slow-but-reading" })
      const payload = "q".repeat(8 * 1024)
      yield* admin.task.enqueueBatch({
        tasks: Array.from({ length: 50 }, (_, i) => EnqueueTask.make({ projectId: project.id, kind: "noop", payload: { i, payload } }))
      })
      const conn = yield* rawTcp(hub.tcpPort)
      const sent = 30
      for (let i = 1; i <= sent; i++) yield* conn.send(request(String(i), "task.list", { projectId: project.id, limit: 50 }, hub.adminKey))
      for (let i = 1; i <= sent; i++) {
        const exit = yield* exitOf(conn, String(i))
        assert.strictEqual(exitTag(exit), "Success")
        assert.strictEqual((exit.exit as { value: Array<unknown> }).value.length, 50)
      }
      assert.isFalse(conn.closed())
    })
  )

  it.scopedLive("a WebSocket message larger than the frame limit is refused from its header, before its payload is read", () =>
    Effect.gen(function* () {
      const hub = yield* startHub({ maxFrameBytes: 64 * 1024 })
      const socket = yield* Effect.acquireRelease(
        Effect.async<net.Socket>((resume) => {
          const s: net.Socket = net.connect({ host: "127.0.0.1", port: hub.httpPort }, () => resume(Effect.succeed(s)))
        }),
        (s) => Effect.sync(() => s.destroy())
      )
      let received = Buffer.alloc(0)
      let closed = false
      socket.on("data", (d: Buffer) => (received = Buffer.concat([received, d])))
      socket.on("close", () => (closed = true))
      socket.on("error", () => {})
      socket.write(
        "GET /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
      )
      yield* eventually("the handshake answer", () => received.includes("\r\n\r\n"))
      assert.match(received.toString("latin1"), /^HTTP\/1\.1 101 /)
      const handshake = received.indexOf("\r\n\r\n") + 4

      // a text frame announcing 90 MiB (masked, as from a client), followed by only 64 KiB of it
      const header = Buffer.alloc(14)
      header[0] = 0x81
      header[1] = 0x80 | 127
      header.writeBigUInt64BE(BigInt(90 * 1024 * 1024), 2)
      header.writeUInt32BE(0x01020304, 10)
      socket.write(Buffer.concat([header, Buffer.alloc(64 * 1024, 0x20)]))

      yield* eventually("a close frame or the connection to close", () => closed || received.length > handshake, 5_000)
      const frame = received.subarray(handshake)
      if (frame.length > 0) {
        assert.strictEqual(frame[0], 0x88, "expected a close frame")
        assert.strictEqual(frame.readUInt16BE(2), 1009)
      }

      const conn = yield* rawWebSocket(hub.wsUrl)
      yield* conn.send(request("1", "user.whoami", undefined, hub.adminKey))
      assert.strictEqual(exitTag(yield* exitOf(conn, "1")), "Success")
    })
  )
})
