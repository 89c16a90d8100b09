import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Queue, Schedule, Scope, Stream } from "effect"
import { WebSocket } from "ws"
import { type HubRpcClient, makeHubClient } from "../../src/client/HubClient.js"
import type { ProjectId } from "../../src/domain/Ids.js"
import type { PresenceEntry, PresenceItem } from "../../src/domain/Presence.js"
import { startHubWithIdleModel, type TestHub } from "../support/Hub.js"
import { backendConfig, backends } from "../support/Pg.js"
import { type RawConnection, rawTcp, request, type ServerMessage } from "../support/RawRpc.js"
import { subscribeQueued } from "../support/Subscribe.js"

/**
 * Presence against a real hub: Effect clients and hand-written wire clients over TCP and
 * WebSocket. A client killed without a clean close, or one that just stops heartbeating, must be
 * seen leaving by the others; typing must expire by itself. Waits are for the awaited item, each
 * with a deadline, never a fixed sleep.
 */

type Transport = "tcp" | "websocket"

/** Short bounds so that expiry happens within the test (the defaults are 30 s and 5 s). */
const TIMEOUT_SECONDS = 1
const TYPING_SECONDS = 0.4

const connect = (hub: TestHub, transport: Transport, token: string) =>
  makeHubClient(transport === "tcp" ? { transport: "tcp", host: "127.0.0.1", port: hub.tcpPort } : { transport: "ws", url: hub.wsUrl }, token)

const within = <A, E, R>(what: string, effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error(`timed out waiting for ${what}`) }), Effect.orDie)

/** Subscribes in the background and waits for `Ready`; `next` waits for the first matching item not taken yet. */
const watch = (client: HubRpcClient, projectId: ProjectId) =>
  Effect.gen(function* () {
    const items = yield* subscribeQueued(client, projectId)
    const next = (what: string, match: (p: PresenceItem) => boolean) =>
      within(
        what,
        Effect.gen(function* () {
          for (;;) {
            const item = yield* Queue.take(items)
            if (item._tag === "Presence" && match(item)) return item
          }
        })
      )
    return { next }
  })

/** A raw wire client whose socket can be killed: destroyed (TCP) or terminated (WebSocket), with no close handshake. */
const killable = (hub: TestHub, transport: Transport) =>
  Effect.gen(function* () {
    if (transport === "tcp") {
      const scope = yield* Scope.make()
      const conn = yield* Scope.extend(rawTcp(hub.tcpPort), scope)
      // the raw client's release destroys the socket: no FIN handshake is waited for
      return { conn, kill: Scope.close(scope, Exit.void) }
    }
    const ws = yield* Effect.async<WebSocket, Error>((resume) => {
      const s = new WebSocket(hub.wsUrl)
      s.once("open", () => resume(Effect.succeed(s)))
      s.once("error", (e) => resume(Effect.fail(e)))
    }).pipe(Effect.orDie)
    yield* Effect.addFinalizer(() => Effect.sync(() => ws.terminate()))
    const incoming = yield* Queue.unbounded<ServerMessage>()
    const pending: Array<ServerMessage> = []
    ws.on("message", (data) => {
      const message = JSON.parse(data.toString()) as ServerMessage
      if (message._tag === "Chunk") ws.send(JSON.stringify({ _tag: "Ack", requestId: message.requestId }))
      Queue.unsafeOffer(incoming, message)
    })
    const conn: RawConnection = {
      send: (frame) => Effect.sync(() => ws.send(typeof frame === "string" ? frame : JSON.stringify(frame))),
      next: (what, match) =>
        within(
          what,
          Effect.gen(function* () {
            for (;;) {
              const i = pending.findIndex(match)
              if (i >= 0) return pending.splice(i, 1)[0]!
              pending.push(yield* Queue.take(incoming))
            }
          })
        ),
      closed: () => ws.readyState !== WebSocket.OPEN
    }
    // terminate() destroys the socket without a close frame
    return { conn, kill: Effect.sync(() => ws.terminate()) }
  })

const successOf = (m: ServerMessage): unknown => {
  const exit = m["exit"] as { _tag: string; value?: unknown; cause?: unknown }
  assert.strictEqual(exit._tag, "Success", JSON.stringify(exit))
  return exit.value
}
const exitOf = (conn: RawConnection, id: string) => conn.next(`the reply to ${id}`, (m) => m._tag === "Exit" && m.requestId === id)
const presenceValues = (m: ServerMessage): ReadonlyArray<PresenceItem> =>
  ((m["values"] ?? []) as ReadonlyArray<{ _tag: string }>).filter((v): v is PresenceItem => v._tag === "Presence")

/** A project with a session; bob is a viewer of it, and `outsider` a user who is not a member. */
const setup = (hub: TestHub, transport: Transport) =>
  Effect.gen(function* () {
    const admin = yield* connect(hub, transport, hub.adminKey)
    const project = yield* admin.project.create({ name: "presence" })
    const session = yield* admin.session.create({ projectId: project.id })
    const keyOf = (name: string) =>
      Effect.gen(function* () {
        const user = yield* admin.user.create({ name, password: `${name}-password`, isAdmin: false })
        return { user, key: (yield* admin.key.create({ name: `${name} key`, scopes: ["read", "write"], userId: user.id })).key }
      })
    const bob = yield* keyOf("bob")
    const outsider = yield* keyOf("outsider")
    yield* admin.project.addMember({ projectId: project.id, user: "bob", role: "viewer" })
    const me = yield* admin.user.whoami()
    return { admin, me, projectId: project.id, sessionId: session.id, bob, outsider }
  })

const hubOptions = { presenceTimeoutSeconds: TIMEOUT_SECONDS, typingSeconds: TYPING_SECONDS, typingIntervalMs: 60_000 }

const transportSuite = (transport: Transport) =>
  describe(`presence over ${transport}`, () => {
    it.scopedLive("two clients see each other join; a killed client is seen leaving", () =>
      Effect.gen(function* () {
        // a long timeout: the leave must come from the closed socket
        const hub = yield* startHubWithIdleModel({ ...hubOptions, presenceTimeoutSeconds: 30 })
        const w = yield* setup(hub, transport)
        const alice = yield* watch(w.admin, w.projectId)
        const { conn: bob, kill } = yield* killable(hub, transport)
        yield* bob.send(request("1", "events.subscribe", { projectId: w.projectId }, w.bob.key))
        yield* bob.next("bob's Ready", (m) => m._tag === "Chunk" && m.requestId === "1" && JSON.stringify(m["values"]).includes('"Ready"'))

        const aliceEntry = yield* w.admin.presence.join({ projectId: w.projectId, client: "test-alice" })
        yield* bob.send(request("2", "presence.join", { projectId: w.projectId, sessionId: w.sessionId, client: "raw-bob" }, w.bob.key))
        const bobEntry = successOf(yield* exitOf(bob, "2")) as PresenceEntry
        assert.strictEqual(bobEntry.userId, w.bob.user.id)
        assert.strictEqual(bobEntry.sessionId, w.sessionId)
        assert.notStrictEqual(bobEntry.connection, aliceEntry.connection)

        // each sees the other as a Presence item on its event stream ...
        const joined = yield* alice.next("bob's Joined", (p) => p.change === "Joined" && p.entry.userId === w.bob.user.id)
        assert.deepStrictEqual(
          [joined.projectId, joined.entry.userName, joined.entry.client, joined.entry.sessionId],
          [w.projectId, "bob", "raw-bob", w.sessionId]
        )
        assert.notProperty(joined, "seq")
        const seen = yield* bob.next(
          "alice's Joined",
          (m) => m._tag === "Chunk" && presenceValues(m).some((p) => p.change === "Joined" && p.entry.userId === w.me.userId)
        )
        assert.strictEqual(presenceValues(seen).find((p) => p.entry.userId === w.me.userId)?.entry.client, "test-alice")

        // ... and in the list
        const listed = yield* w.admin.presence.list({ projectId: w.projectId })
        assert.deepStrictEqual(
          listed.map((e) => [e.userName, e.client, e.sessionId]),
          [
            ["admin", "test-alice", null],
            ["bob", "raw-bob", w.sessionId]
          ]
        )
        yield* bob.send(request("3", "presence.list", { projectId: w.projectId }, w.bob.key))
        assert.deepStrictEqual(
          (successOf(yield* exitOf(bob, "3")) as ReadonlyArray<PresenceEntry>).map((e) => e.userName),
          ["admin", "bob"]
        )

        // the socket dies without a clean close: alice sees bob leave
        yield* kill
        const left = yield* alice.next("bob's Left", (p) => p.change === "Left" && p.entry.connection === bobEntry.connection)
        assert.strictEqual(left.reason, "closed")
        assert.deepStrictEqual(
          (yield* w.admin.presence.list({ projectId: w.projectId })).map((e) => e.userName),
          ["admin"]
        )
      })
    )

    it.scopedLive("a connection that stops heartbeating is dropped after the timeout; heartbeats keep the others", () =>
      Effect.gen(function* () {
        const hub = yield* startHubWithIdleModel(hubOptions)
        const w = yield* setup(hub, transport)
        const alice = yield* watch(w.admin, w.projectId)
        yield* w.admin.presence.join({ projectId: w.projectId })
        // alice keeps heartbeating; bob's connection stays open but goes silent (as a hung client would)
        yield* w.admin.presence
          .heartbeat({ projectId: w.projectId })
          .pipe(Effect.repeat(Schedule.spaced("150 millis")), Effect.orDie, Effect.forkScoped)
        const bob = yield* connect(hub, transport, w.bob.key)
        const bobEntry = yield* bob.presence.join({ projectId: w.projectId })

        const left = yield* alice.next("bob's timeout", (p) => p.change === "Left" && p.entry.connection === bobEntry.connection)
        assert.strictEqual(left.reason, "timeout")
        assert.isAtLeast(left.at - left.entry.lastSeen, TIMEOUT_SECONDS * 1000)
        const still = yield* w.admin.presence.list({ projectId: w.projectId })
        assert.deepStrictEqual(
          still.map((e) => e.userName),
          ["admin"]
        )
        assert.isAtLeast(Date.now() - still[0]!.since, TIMEOUT_SECONDS * 1000)

        // bob's connection is alive, but its entry is gone: it must join again
        const gone = yield* Effect.flip(bob.presence.heartbeat({ projectId: w.projectId }))
        assert.strictEqual(gone._tag, "NotPresent")
        yield* bob.presence.join({ projectId: w.projectId })
        yield* alice.next("bob's Joined again", (p) => p.change === "Joined" && p.entry.userId === w.bob.user.id)
      })
    )
  })

transportSuite("tcp")
transportSuite("websocket")

describe.each(backends)("presence on %s", (backend) => {
  it.scopedLive("typing is broadcast, coalesced within the interval, and expires by itself", () =>
    Effect.gen(function* () {
      const hub = yield* startHubWithIdleModel({ ...(yield* backendConfig(backend)), ...hubOptions, presenceTimeoutSeconds: 30 })
      const w = yield* setup(hub, "tcp")
      const alice = yield* watch(w.admin, w.projectId)
      yield* w.admin.presence.join({ projectId: w.projectId, sessionId: w.sessionId })
      const bob = yield* connect(hub, "websocket", w.bob.key)

      const notJoined = yield* Effect.flip(bob.presence.typing({ projectId: w.projectId, sessionId: w.sessionId }))
      assert.strictEqual(notJoined._tag, "NotPresent")

      yield* bob.presence.join({ projectId: w.projectId })
      const first = yield* bob.presence.typing({ projectId: w.projectId, sessionId: w.sessionId })
      assert.isTrue(first.broadcast)
      const again = yield* bob.presence.typing({ projectId: w.projectId, sessionId: w.sessionId })
      assert.isFalse(again.broadcast)
      assert.isAtLeast(again.until, first.until)

      const typing = yield* alice.next("bob typing", (p) => p.change === "Typing" && p.entry.userId === w.bob.user.id)
      assert.strictEqual(typing.entry.typing?.sessionId, w.sessionId)
      // moving to another session within the interval is not broadcast either, but the list shows it
      const other = yield* w.admin.session.create({ projectId: w.projectId })
      const moved = yield* bob.presence.typing({ projectId: w.projectId, sessionId: other.id })
      assert.isFalse(moved.broadcast)
      const listed = yield* w.admin.presence.list({ projectId: w.projectId })
      assert.strictEqual(listed.find((e) => e.userName === "bob")?.typing?.sessionId, other.id)

      const stopped = yield* alice.next("bob's typing to expire", (p) => p.entry.userId === w.bob.user.id && p.change !== "Typing")
      assert.strictEqual(stopped.change, "TypingStopped")
      assert.isNull(stopped.entry.typing)
      assert.isAtLeast(stopped.at, moved.until)
      assert.isNull((yield* w.admin.presence.list({ projectId: w.projectId })).find((e) => e.userName === "bob")?.typing)

      // typing in a session that is not the project's is refused
      const unknown = yield* Effect.flip(bob.presence.typing({ projectId: w.projectId, sessionId: "ses_nope" as typeof w.sessionId }))
      assert.strictEqual(unknown._tag, "NotFound")
    })
  )

  it.scopedLive("a non-member is refused; one connection's projects are capped; leave ends the entry", () =>
    Effect.gen(function* () {
      const hub = yield* startHubWithIdleModel({
        ...(yield* backendConfig(backend)),
        ...hubOptions,
        presenceTimeoutSeconds: 30,
        presenceMaxPerConnection: 2
      })
      const w = yield* setup(hub, "tcp")
      const outsider = yield* connect(hub, "tcp", w.outsider.key)
      const refused = yield* Effect.all([
        Effect.flip(outsider.presence.join({ projectId: w.projectId })),
        Effect.flip(outsider.presence.list({ projectId: w.projectId })),
        Effect.flip(outsider.presence.typing({ projectId: w.projectId, sessionId: w.sessionId }))
      ])
      assert.deepStrictEqual(
        refused.map((e) => e._tag),
        ["NotFound", "NotFound", "NotFound"]
      )
      const watchOut = yield* Effect.flip(Stream.runHead(outsider.events.subscribe({ projectId: w.projectId })))
      assert.strictEqual(watchOut._tag, "NotFound")

      const bob = yield* connect(hub, "tcp", w.bob.key)
      const badSession = yield* Effect.flip(bob.presence.join({ projectId: w.projectId, sessionId: "ses_nope" as typeof w.sessionId }))
      assert.strictEqual(badSession._tag, "NotFound")
      const tooLong = yield* Effect.flip(bob.presence.join({ projectId: w.projectId, client: "x".repeat(65) }))
      assert.strictEqual(tooLong._tag, "InvalidInput")

      const others = yield* Effect.all([w.admin.project.create({ name: "two" }), w.admin.project.create({ name: "three" })])
      for (const p of others) yield* w.admin.project.addMember({ projectId: p.id, user: "bob", role: "viewer" })
      yield* bob.presence.join({ projectId: w.projectId })
      yield* bob.presence.join({ projectId: others[0].id })
      const capped = yield* Effect.flip(bob.presence.join({ projectId: others[1].id }))
      assert.strictEqual(capped._tag, "PresenceLimit")
      assert.strictEqual(capped._tag === "PresenceLimit" && capped.limit, 2)
      // joining again where it is present is a refresh, not a new entry
      yield* bob.presence.join({ projectId: w.projectId, client: "renamed" })
      // another connection of the same user has its own allowance
      const bob2 = yield* connect(hub, "tcp", w.bob.key)
      yield* bob2.presence.join({ projectId: others[1].id })

      const alice = yield* watch(w.admin, w.projectId)
      assert.isTrue(yield* bob.presence.leave({ projectId: w.projectId }))
      const left = yield* alice.next("bob's leave", (p) => p.change === "Left" && p.entry.userId === w.bob.user.id)
      assert.strictEqual(left.reason, "leave")
      assert.strictEqual(left.entry.client, "renamed")
      assert.isFalse(yield* bob.presence.leave({ projectId: w.projectId }))
      yield* bob.presence.join({ projectId: others[1].id })
      assert.deepStrictEqual(
        (yield* w.admin.presence.list({ projectId: others[1].id })).map((e) => e.userName),
        ["bob", "bob"]
      )
    })
  )
})
