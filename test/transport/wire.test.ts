import { assert, describe, it } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import { startHub, type TestHub } from "../support/Hub.js"
import { rawTcp, rawWebSocket, type RawConnection, request, type ServerMessage } from "../support/RawRpc.js"

/**
 * The wire protocol as a client in another language speaks it (hand-written frames on a raw TCP
 * socket and a raw WebSocket): bad frames on a connection get an error message each, and the
 * connection's running stream and later requests are unaffected.
 */

const MAX_FRAME = 64 * 1024
const SUB = "1"

type Open = (hub: TestHub) => Effect.Effect<RawConnection, never, Scope.Scope>

const exitOf = (conn: RawConnection, id: string) => conn.next(`Exit of request ${id}`, (m) => m._tag === "Exit" && m.requestId === id)
const defect = (conn: RawConnection, what: string, pattern: RegExp) =>
  conn.next(`Defect (${what})`, (m) => m._tag === "Defect" && pattern.test(String(m.defect)))
const chunkOf = (conn: RawConnection, id: string, what: string, match: (value: Record<string, unknown>) => boolean) =>
  conn.next(
    `Chunk of ${id} with ${what}`,
    (m) => m._tag === "Chunk" && m.requestId === id && (m.values as Array<Record<string, unknown>>).some(match)
  )

const exitTag = (m: ServerMessage) => (m.exit as { _tag: string })._tag
const causeTag = (m: ServerMessage) => (m.exit as { cause?: { _tag: string } }).cause?._tag

const wireSuite = (name: string, open: Open) =>
  describe(`raw ${name} connection`, () => {
    it.scopedLive("bad frames get errors while the same connection's stream and later requests keep working", () =>
      Effect.gen(function* () {
        const hub = yield* startHub({ maxFrameBytes: MAX_FRAME })
        const admin = yield* hub.tcpClient()
        const project = yield* admin.project.create({ name: "wired" })
        const conn = yield* open(hub)

        yield* conn.send({ _tag: "Ping" })
        yield* conn.next("Pong", (m) => m._tag === "Pong")

        yield* conn.send(request(SUB, "events.subscribe", { projectId: project.id }, hub.adminKey))
        yield* chunkOf(conn, SUB, "Ready", (v) => v._tag === "Ready")

        yield* conn.send("this is {not json")
        yield* defect(conn, "malformed", /^malformed frame/)

        yield* conn.send("[1,2,3]")
        yield* defect(conn, "not an object", /^malformed frame: expected a JSON object/)

        yield* conn.send(request("2", "no.such.rpc", {}, hub.adminKey))
        yield* defect(conn, "unknown tag", /Unknown request tag: no\.such\.rpc/)

        yield* conn.send({ _tag: "Request", id: 7, tag: "project.list", payload: {}, headers: [] })
        yield* defect(conn, "numeric id", /^invalid request id: 7 /)
        yield* conn.send(request("abc", "project.list", undefined, hub.adminKey))
        yield* defect(conn, "non-numeric id", /^invalid request id: "abc" /)
        yield* conn.send({ _tag: "Ack", requestId: "x1" })
        yield* defect(conn, "Ack with a bad id", /^invalid request id: "x1" /)
        yield* conn.send({ _tag: "Request", id: "8", tag: "project.list", headers: [["authorization"], 5] })
        yield* defect(conn, "malformed headers", /headers must be a list of \[name, value\] string pairs/)
        yield* conn.send({ _tag: "Bogus" })
        yield* defect(conn, "unknown message", /Unknown request tag: Bogus/)

        yield* conn.send(request("3", "project.get", { projectId: 42 }, hub.adminKey))
        const invalid = yield* exitOf(conn, "3")
        assert.strictEqual(exitTag(invalid), "Failure")
        assert.strictEqual(causeTag(invalid), "Die")
        assert.match(String((invalid.exit as { cause: { defect: unknown } }).cause.defect), /\["projectId"\][\s\S]*Expected string.*, actual 42/)

        yield* conn.send(request("4", "project.create", { name: "x".repeat(MAX_FRAME + 100) }, hub.adminKey))
        yield* defect(conn, "oversized", new RegExp(`^frame too large: \\d+ bytes exceeds the limit of ${MAX_FRAME} bytes`))

        yield* conn.send(request("5", "project.get", { projectId: "prj_missing" }, hub.adminKey))
        const typed = yield* exitOf(conn, "5")
        assert.deepStrictEqual(typed.exit, {
          _tag: "Failure",
          cause: { _tag: "Fail", error: { _tag: "NotFound", entity: "project", id: "prj_missing" } }
        })

        yield* admin.user.create({ name: "late", password: "late-password", isAdmin: false })
        yield* admin.project.addMember({ projectId: project.id, user: "late", role: "viewer" })
        const event = yield* chunkOf(conn, SUB, "MemberAdded", (v) => {
          const body = (v.event as { event?: { _tag?: string; member?: { userName?: string } } } | undefined)?.event
          return v._tag === "Event" && body?._tag === "MemberAdded" && body.member?.userName === "late"
        })
        assert.strictEqual(event.requestId, SUB)

        yield* conn.send(request("6", "project.list", undefined, hub.adminKey))
        const after = yield* exitOf(conn, "6")
        assert.strictEqual(exitTag(after), "Success")
        assert.deepStrictEqual(
          (after.exit as { value: Array<{ id: string }> }).value.map((p) => p.id),
          [project.id]
        )

        yield* conn.send({ _tag: "Interrupt", requestId: SUB })
        const ended = yield* exitOf(conn, SUB)
        assert.strictEqual(exitTag(ended), "Failure")
        assert.match(JSON.stringify(ended.exit), /Interrupt/)
        assert.isFalse(conn.closed())
      })
    )

    it.scopedLive("a request without a token or with a bad one gets a typed Unauthorized", () =>
      Effect.gen(function* () {
        const hub = yield* startHub()
        const conn = yield* open(hub)
        yield* conn.send({ _tag: "Request", id: "1", tag: "project.list" })
        const missing = yield* exitOf(conn, "1")
        assert.deepStrictEqual(missing.exit, {
          _tag: "Failure",
          cause: { _tag: "Fail", error: { _tag: "Unauthorized", reason: "missing bearer token" } }
        })
        yield* conn.send(request("2", "user.whoami", undefined, "kiris_wrong"))
        const wrong = yield* exitOf(conn, "2")
        assert.deepStrictEqual(wrong.exit, {
          _tag: "Failure",
          cause: { _tag: "Fail", error: { _tag: "Unauthorized", reason: "unknown API key" } }
        })
      })
    )
  })

wireSuite("TCP NDJSON", (hub) => rawTcp(hub.tcpPort))
wireSuite("WebSocket", (hub) => rawWebSocket(hub.wsUrl))
