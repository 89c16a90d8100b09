import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schedule, type Scope } from "effect"
import * as http from "node:http"
import type { DomainEvent } from "../../src/domain/Event.js"
import type { ProjectId } from "../../src/domain/Ids.js"
import { EventBus } from "../../src/events/EventBus.js"
import { sseFrame } from "../../src/transport/http/EventsSse.js"
import { startHub, type TestHub } from "../support/Hub.js"
import { type Backend, backendConfig, backends } from "../support/Pg.js"

/**
 * `GET /api/projects/{projectId}/events` read the way a browser's EventSource reads it: a real
 * HTTP connection whose body is parsed into frames as the bytes arrive.
 */

interface Frame {
  readonly id: string | undefined
  readonly event: string | undefined
  readonly data: string | undefined
  readonly comments: ReadonlyArray<string>
}

interface SseConnection {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  /** The next frame (after those already taken) that `match`es, skipping the others; fails at the deadline or the end of the stream. */
  readonly next: (what: string, match?: (f: Frame) => boolean, ms?: number) => Effect.Effect<Frame, Error>
  /** The whole body, once the server has ended it. */
  readonly text: (ms?: number) => Effect.Effect<string, Error>
  /** Resolves when the server ends the response. */
  readonly ended: (ms?: number) => Effect.Effect<void, Error>
  /** The client goes away. */
  readonly close: () => void
}

const parseFrame = (block: string): Frame => {
  let id: string | undefined
  let event: string | undefined
  const data: Array<string> = []
  const comments: Array<string> = []
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith(":")) {
      comments.push(line.slice(1).trim())
      continue
    }
    const colon = line.indexOf(":")
    const field = colon < 0 ? line : line.slice(0, colon)
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "")
    if (field === "id") id = value
    else if (field === "event") event = value
    else if (field === "data") data.push(value)
  }
  return { id, event, data: data.length === 0 ? undefined : data.join("\n"), comments }
}

const openSse = (
  hub: TestHub,
  route: string,
  options: { readonly token?: string; readonly lastEventId?: string } = {}
): Effect.Effect<SseConnection, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<SseConnection, Error>((resume) => {
      const headers: Record<string, string> = { accept: "text/event-stream" }
      if (options.token !== undefined) headers["authorization"] = `Bearer ${options.token}`
      if (options.lastEventId !== undefined) headers["last-event-id"] = options.lastEventId
      const req = http.get(hub.httpUrl + route, { headers }, (res) => {
        res.setEncoding("utf8")
        const frames: Array<Frame> = []
        const listeners = new Set<() => void>()
        let raw = ""
        let buffer = ""
        let cursor = 0
        let ended = false
        const wake = () => {
          for (const listener of Array.from(listeners)) listener()
        }
        res.on("data", (chunk: string) => {
          raw += chunk
          buffer += chunk
          for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
            frames.push(parseFrame(buffer.slice(0, end)))
            buffer = buffer.slice(end + 2)
          }
          wake()
        })
        const finish = () => {
          ended = true
          wake()
        }
        res.on("end", finish)
        res.on("close", finish)
        res.on("error", finish)
        const waitFor = <A>(what: string, ms: number, poll: () => { readonly done: A } | undefined) =>
          Effect.async<A, Error>((resumeWait) => {
            const timer = setTimeout(() => {
              listeners.delete(check)
              resumeWait(Effect.fail(new Error(`timed out after ${ms} ms waiting for ${what}; received so far: ${JSON.stringify(raw.slice(-2000))}`)))
            }, ms)
            const check = () => {
              const result = poll()
              if (result === undefined) return
              clearTimeout(timer)
              listeners.delete(check)
              resumeWait(Effect.succeed(result.done))
            }
            listeners.add(check)
            check()
            return Effect.sync(() => {
              clearTimeout(timer)
              listeners.delete(check)
            })
          })
        resume(
          Effect.succeed({
            status: res.statusCode ?? 0,
            headers: res.headers,
            next: (what, match = () => true, ms = 10_000) =>
              Effect.flatMap(
                waitFor(what, ms, () => {
                  while (cursor < frames.length) {
                    const frame = frames[cursor++]!
                    if (match(frame)) return { done: frame as Frame | undefined }
                  }
                  return ended ? { done: undefined } : undefined
                }),
                (frame) =>
                  frame === undefined
                    ? Effect.fail(new Error(`the stream ended before ${what}; received: ${JSON.stringify(raw.slice(-2000))}`))
                    : Effect.succeed(frame)
              ),
            text: (ms = 10_000) => waitFor("the end of the body", ms, () => (ended ? { done: raw } : undefined)),
            ended: (ms = 10_000) => waitFor("the end of the stream", ms, () => (ended ? { done: undefined } : undefined)),
            close: () => req.destroy()
          })
        )
      })
      req.on("error", (error) => resume(Effect.fail(error)))
    }),
    (conn) => Effect.sync(() => conn.close())
  )

const eventsRoute = (projectId: ProjectId, query = "") => `/api/projects/${projectId}/events${query}`

const isEvent = (tag: string) => (f: Frame) => f.event === tag && f.id !== undefined
const dataOf = (f: Frame) => JSON.parse(f.data ?? "null") as Record<string, unknown>
/** The name a `ProjectUpdated` frame carries. */
const renamedTo = (f: Frame) => (dataOf(f)["event"] as { project: { name: string } }).project.name

/** Frames up to and including `Ready`: what a resumed stream replays before it goes live. */
const untilReady = (conn: SseConnection) =>
  Effect.gen(function* () {
    const replayed: Array<Frame> = []
    for (;;) {
      const frame = yield* conn.next("a frame before Ready", (f) => f.comments.length === 0 || f.event !== undefined)
      if (frame.event === "Ready") return { replayed, ready: frame }
      replayed.push(frame)
    }
  })

const setup = (backend: Backend, options: Parameters<typeof startHub>[0] = {}) =>
  Effect.gen(function* () {
    const hub = yield* startHub({ ...options, ...(yield* backendConfig(backend)) })
    const admin = yield* hub.tcpClient()
    const project = yield* admin.project.create({ name: "watched" })
    const rename = (name: string) => admin.project.update({ projectId: project.id, name })
    return { hub, admin, project, rename }
  })

describe.each(backends)("Server-Sent Events on %s", (backend) => {
  it.scopedLive("project events arrive as frames whose id is their seq and whose name is their tag, with no-buffering headers", () =>
    Effect.gen(function* () {
      const { hub, project, rename } = yield* setup(backend)
      const conn = yield* openSse(hub, eventsRoute(project.id), { token: hub.adminKey })
      assert.strictEqual(conn.status, 200)
      assert.match(String(conn.headers["content-type"]), /^text\/event-stream/)
      assert.match(String(conn.headers["cache-control"]), /no-cache/)
      assert.strictEqual(conn.headers["x-accel-buffering"], "no")
      assert.isUndefined(conn.headers["content-encoding"])
      yield* conn.next("Ready", (f) => f.event === "Ready")

      yield* rename("first")
      yield* rename("second")
      const a = yield* conn.next("ProjectUpdated first", isEvent("ProjectUpdated"))
      const b = yield* conn.next("ProjectUpdated second", isEvent("ProjectUpdated"))
      assert.deepStrictEqual([renamedTo(a), renamedTo(b)], ["first", "second"])
      for (const f of [a, b]) {
        assert.strictEqual(f.id, String(dataOf(f)["seq"]), "the frame's id is the event's seq")
        assert.strictEqual(dataOf(f)["projectId"], project.id)
      }
      assert.strictEqual(Number(b.id), Number(a.id) + 1)
    })
  )

  it.scopedLive("a reconnect with Last-Event-ID gets exactly the events it missed, then live ones", () =>
    Effect.gen(function* () {
      const { hub, project, rename } = yield* setup(backend)
      const first = yield* openSse(hub, eventsRoute(project.id), { token: hub.adminKey })
      yield* first.next("Ready", (f) => f.event === "Ready")
      yield* rename("seen")
      const seen = yield* first.next("ProjectUpdated seen", isEvent("ProjectUpdated"))
      first.close()

      yield* rename("missed 1")
      yield* rename("missed 2")
      const again = yield* openSse(hub, eventsRoute(project.id), { token: hub.adminKey, lastEventId: seen.id! })
      const { ready, replayed } = yield* untilReady(again)
      assert.deepStrictEqual(
        replayed.map((f) => [f.event, renamedTo(f)]),
        [
          ["ProjectUpdated", "missed 1"],
          ["ProjectUpdated", "missed 2"]
        ]
      )
      assert.deepStrictEqual(
        replayed.map((f) => Number(f.id)),
        [Number(seen.id) + 1, Number(seen.id) + 2]
      )
      assert.strictEqual(ready.id, replayed[1]!.id, "Ready carries the seq a later reconnect resumes after")

      yield* rename("live")
      const live = yield* again.next("ProjectUpdated live", isEvent("ProjectUpdated"))
      assert.strictEqual(renamedTo(live), "live")
      assert.strictEqual(Number(live.id), Number(seen.id) + 3)
    })
  )

  it.scopedLive("?since= resumes like Last-Event-ID, the header wins over it, and a value that is not a seq is a 400", () =>
    Effect.gen(function* () {
      const { hub, project, rename } = yield* setup(backend)
      const watch = yield* openSse(hub, eventsRoute(project.id), { token: hub.adminKey })
      yield* watch.next("Ready", (f) => f.event === "Ready")
      yield* rename("one")
      yield* rename("two")
      yield* rename("three")
      const one = yield* watch.next("one", isEvent("ProjectUpdated"))

      const since = yield* openSse(hub, eventsRoute(project.id, `?since=${one.id}`), { token: hub.adminKey })
      assert.deepStrictEqual((yield* untilReady(since)).replayed.map(renamedTo), ["two", "three"])

      const both = yield* openSse(hub, eventsRoute(project.id, "?since=0"), { token: hub.adminKey, lastEventId: String(Number(one.id) + 1) })
      assert.deepStrictEqual((yield* untilReady(both)).replayed.map(renamedTo), ["three"])

      for (const [query, lastEventId, name] of [
        ["?since=abc", undefined, "since"],
        ["?since=-1", undefined, "since"],
        ["", "1.5", "Last-Event-ID"],
        ["?since=1", "x", "Last-Event-ID"]
      ] as const) {
        const bad = yield* openSse(hub, eventsRoute(project.id, query), {
          token: hub.adminKey,
          ...(lastEventId === undefined ? {} : { lastEventId })
        })
        assert.strictEqual(bad.status, 400, `${query} ${lastEventId}`)
        const body = JSON.parse(yield* bad.text()) as { _tag: string; reason: string }
        assert.strictEqual(body._tag, "InvalidInput")
        assert.include(body.reason, name)
      }
    })
  )

  it.scopedLive("a resume point older than the retained log gets a Reset event, then the events kept", () =>
    Effect.gen(function* () {
      const { hub, project, rename } = yield* setup(backend, { eventRetentionCount: 2 })
      for (const name of ["a", "b", "c", "d", "e"]) yield* rename(name)
      const bus = yield* Effect.provide(EventBus, hub.context)
      yield* bus.prune(project.id)
      const last = yield* bus.lastSeq(project.id)

      const conn = yield* openSse(hub, eventsRoute(project.id, "?since=1"), { token: hub.adminKey })
      const reset = yield* conn.next("Reset", () => true)
      assert.strictEqual(reset.event, "Reset")
      assert.isUndefined(reset.id, "Reset moves no resume point")
      assert.deepStrictEqual(dataOf(reset), { _tag: "Reset", oldestSeq: last - 1 })
      const { ready, replayed } = yield* untilReady(conn)
      assert.deepStrictEqual(replayed.map(renamedTo), ["d", "e"])
      assert.strictEqual(ready.id, String(last))
    })
  )

  it("frames: a project event carries its seq as id and its tag as name; Ready and Lagged carry the seq to resume after", () => {
    const event = {
      seq: 7,
      projectId: "prj_x" as ProjectId,
      at: 1,
      event: { _tag: "ProjectDeleted", projectId: "prj_x" as ProjectId }
    } as unknown as DomainEvent
    assert.strictEqual(
      sseFrame({ _tag: "Event", event }),
      'id: 7\nevent: ProjectDeleted\ndata: {"seq":7,"projectId":"prj_x","at":1,"event":{"_tag":"ProjectDeleted","projectId":"prj_x"}}\n\n'
    )
    assert.strictEqual(sseFrame({ _tag: "Ready", seq: 7 }), 'id: 7\nevent: Ready\ndata: {"_tag":"Ready","seq":7}\n\n')
    assert.strictEqual(
      sseFrame({ _tag: "Lagged", missed: 3, lastSeq: 9 }),
      'id: 9\nevent: Lagged\ndata: {"_tag":"Lagged","missed":3,"lastSeq":9}\n\n'
    )
    assert.strictEqual(sseFrame({ _tag: "Reset", oldestSeq: 4 }), 'event: Reset\ndata: {"_tag":"Reset","oldestSeq":4}\n\n')
  })

  it.scopedLive("an idle stream gets heartbeat comment lines", () =>
    Effect.gen(function* () {
      const { hub, project } = yield* setup(backend, { sseHeartbeatSeconds: 0.05 })
      const conn = yield* openSse(hub, eventsRoute(project.id), { token: hub.adminKey })
      yield* conn.next("Ready", (f) => f.event === "Ready")
      const ping = yield* conn.next("a heartbeat comment", (f) => f.comments.length > 0 && f.event === undefined)
      assert.deepStrictEqual(ping.comments, ["ping"])
      yield* conn.next("a second heartbeat comment", (f) => f.comments.length > 0)
    })
  )

  it.scopedLive("no token or a bad one is a 401; a project the caller cannot see is a 404; a viewer reads", () =>
    Effect.gen(function* () {
      const { admin, hub, project, rename } = yield* setup(backend)
      const vera = yield* admin.user.create({ name: "vera", password: "vera-password", isAdmin: false })
      const olga = yield* admin.user.create({ name: "olga", password: "olga-password", isAdmin: false })
      yield* admin.project.addMember({ projectId: project.id, user: vera.id, role: "viewer" })
      const viewerKey = (yield* admin.key.create({ name: "vera reads", scopes: ["read"], userId: vera.id })).key
      const outsiderKey = (yield* admin.key.create({ name: "olga reads", scopes: ["read"], userId: olga.id })).key

      for (const token of [undefined, "kiris_not-a-key"]) {
        const refused = yield* openSse(hub, eventsRoute(project.id), token === undefined ? {} : { token })
        assert.strictEqual(refused.status, 401)
        assert.strictEqual((JSON.parse(yield* refused.text()) as { _tag: string })._tag, "Unauthorized")
      }
      for (const projectId of [project.id, "prj_unknown" as ProjectId]) {
        const hidden = yield* openSse(hub, eventsRoute(projectId), { token: outsiderKey })
        assert.strictEqual(hidden.status, 404)
        assert.deepInclude(JSON.parse(yield* hidden.text()), { _tag: "NotFound", entity: "project" })
      }

      const viewer = yield* openSse(hub, eventsRoute(project.id), { token: viewerKey })
      assert.strictEqual(viewer.status, 200)
      yield* viewer.next("Ready", (f) => f.event === "Ready")
      yield* rename("seen by the viewer")
      assert.strictEqual(renamedTo(yield* viewer.next("ProjectUpdated", isEvent("ProjectUpdated"))), "seen by the viewer")
    })
  )

  it.scopedLive("a revoked key's stream and a removed member's stream end with a Closed event naming the refusal", () =>
    Effect.gen(function* () {
      const { admin, hub, project } = yield* setup(backend)
      const vera = yield* admin.user.create({ name: "vera", password: "vera-password", isAdmin: false })
      const mia = yield* admin.user.create({ name: "mia", password: "mia-password", isAdmin: false })
      yield* admin.project.addMember({ projectId: project.id, user: vera.id, role: "viewer" })
      yield* admin.project.addMember({ projectId: project.id, user: mia.id, role: "viewer" })
      const veraKey = yield* admin.key.create({ name: "vera reads", scopes: ["read"], userId: vera.id })
      const miaKey = yield* admin.key.create({ name: "mia reads", scopes: ["read"], userId: mia.id })

      const revoked = yield* openSse(hub, eventsRoute(project.id), { token: veraKey.key })
      const removed = yield* openSse(hub, eventsRoute(project.id), { token: miaKey.key })
      yield* revoked.next("Ready", (f) => f.event === "Ready")
      yield* removed.next("Ready", (f) => f.event === "Ready")

      yield* admin.key.revoke({ id: veraKey.info.id })
      assert.strictEqual(dataOf(yield* revoked.next("Closed", (f) => f.event === "Closed"))["_tag"], "Unauthorized")
      yield* revoked.ended()

      yield* admin.project.removeMember({ projectId: project.id, user: "mia" })
      assert.deepInclude(dataOf(yield* removed.next("Closed", (f) => f.event === "Closed")), { _tag: "NotFound", entity: "project" })
      yield* removed.ended()
    })
  )

  it.scopedLive("a client that goes away ends its stream on the hub: the fibers serving it are gone", () =>
    Effect.gen(function* () {
      const { hub, project, rename } = yield* setup(backend, { sseHeartbeatSeconds: 0.05 })
      // The hub serves each request in a root fiber, which holds the stream's scope: the bus
      // subscription, the revocation watch and the heartbeat. Its end releases them all.
      const rootFibers = Effect.map(Fiber.roots, (fibers) => fibers.length)
      const baseline = yield* rootFibers
      const open = yield* Effect.forEach([1, 2, 3, 4, 5], () =>
        Effect.tap(openSse(hub, eventsRoute(project.id), { token: hub.adminKey }), (conn) => conn.next("Ready", (f) => f.event === "Ready"))
      )
      assert.isAtLeast(yield* rootFibers, baseline + open.length, "each open stream is served by a fiber")
      for (const conn of open) conn.close()
      yield* rename("after the clients left")
      yield* Effect.suspend(() =>
        Effect.flatMap(rootFibers, (n) => (n <= baseline ? Effect.void : Effect.fail(new Error(`${n - baseline} fibers left`))))
      ).pipe(Effect.retry({ schedule: Schedule.spaced("20 millis"), times: 500 }))
    })
  )

  it.scopedLive("the stream ends after the project's ProjectDeleted event", () =>
    Effect.gen(function* () {
      const { admin, hub, project } = yield* setup(backend)
      const conn = yield* openSse(hub, eventsRoute(project.id), { token: hub.adminKey })
      yield* conn.next("Ready", (f) => f.event === "Ready")
      yield* admin.project.delete({ projectId: project.id, confirm: "watched" })
      yield* conn.next("ProjectDeleted", isEvent("ProjectDeleted"))
      yield* conn.ended()
    })
  )
})
