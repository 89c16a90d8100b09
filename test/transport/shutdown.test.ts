import { assert, describe, it } from "@effect/vitest"
import { Effect, Queue, Schedule } from "effect"
import * as net from "node:net"
import * as path from "node:path"
import { makeHubClient, parseHub } from "../../src/client/HubClient.js"
import { tempDir } from "../support/Hub.js"
import { serveKiris } from "../support/KirisProcess.js"
import { rawTcp, request } from "../support/RawRpc.js"
import { subscribeQueued } from "../support/Subscribe.js"

/**
 * SIGTERM stops a hub within its shutdown grace period, whatever its connections hold open: an
 * event stream, a `task.wait` on a task nobody runs, a request with a tag the hub does not know, and
 * an HTTP request that never completes.
 */

const metricsText = (httpUrl: string) => Effect.promise(() => fetch(`${httpUrl}/metrics`).then((r) => r.text()))

/** Polls `/metrics` (with a deadline) until `kiris_rpc_in_flight` reads `value`. */
const inFlightIs = (httpUrl: string, value: number) =>
  metricsText(httpUrl).pipe(
    Effect.filterOrFail((text) => new RegExp(`^kiris_rpc_in_flight ${value}$`, "m").test(text)),
    Effect.retry({ schedule: Schedule.spaced("20 millis"), times: 250 }),
    Effect.orElse(() =>
      Effect.flatMap(metricsText(httpUrl), (text) =>
        Effect.dieMessage(`kiris_rpc_in_flight never read ${value}: ${text.match(/^kiris_rpc_in_flight .*$/m)?.[0]}`)
      )
    )
  )

describe("kiris serve shutdown", () => {
  it.scopedLive(
    "exits 0 soon after SIGTERM with a stream, a pending task.wait and an unknown tag open on one connection; unknown tags leave no request in flight",
    () =>
      Effect.gen(function* () {
        const hub = yield* serveKiris(path.join(tempDir(), "data"), { env: { KIRIS_SHUTDOWN_GRACE_SECONDS: "2" } })
        const admin = yield* makeHubClient({ transport: "tcp", host: "127.0.0.1", port: hub.tcpPort }, hub.adminKey)
        const project = yield* admin.project.create({ name: "stopping", description: "" })
        // a task no worker takes: a wait on it never ends by itself
        const task = yield* admin.task.enqueue({ projectId: project.id, kind: "noop", payload: {} })

        const conn = yield* rawTcp(hub.tcpPort)
        // an unknown tag first: it gets its error reply, and counts as nothing in flight afterwards
        yield* conn.send(request("1", "no.such.rpc", {}, hub.adminKey))
        const refused = yield* conn.next(
          "reply to the unknown tag",
          (m) => m.requestId === "1" || (m._tag === "Defect" && /no\.such\.rpc/.test(String(m.defect)))
        )
        assert.match(JSON.stringify(refused), /Unknown request tag: no\.such\.rpc/)
        yield* inFlightIs(hub.httpUrl, 0)

        yield* conn.send(request("2", "events.subscribe", { projectId: project.id }, hub.adminKey))
        yield* conn.next("first event chunk", (m) => m._tag === "Chunk" && m.requestId === "2")
        yield* conn.send(request("3", "task.wait", { taskIds: [task.id] }, hub.adminKey))
        yield* inFlightIs(hub.httpUrl, 1)
        yield* conn.send(request("4", "no.such.rpc", {}, hub.adminKey))
        yield* conn.next(
          "reply to the second unknown tag",
          (m) => m.requestId === "4" || (m._tag === "Defect" && /no\.such\.rpc/.test(String(m.defect)))
        )
        yield* inFlightIs(hub.httpUrl, 1)

        hub.proc.child.kill("SIGTERM")
        const exit = yield* hub.proc.exited("15 seconds")
        assert.deepStrictEqual(exit, { code: 0, signal: null }, hub.proc.stderr())
      }),
    60_000
  )

  it.scopedLive(
    "exits 0 soon after SIGTERM with a WebSocket event stream and an HTTP connection whose request never completes",
    () =>
      Effect.gen(function* () {
        const hub = yield* serveKiris(path.join(tempDir(), "data"), { env: { KIRIS_SHUTDOWN_GRACE_SECONDS: "2" } })
        const admin = yield* makeHubClient(parseHub(`ws://127.0.0.1:${hub.httpPort}/rpc`), hub.adminKey)
        const project = yield* admin.project.create({ name: "stopping", description: "" })
        // live (its Ready taken), and nothing else has happened in the project yet
        const events = yield* subscribeQueued(admin, project.id)
        assert.strictEqual(yield* Queue.size(events), 0)
        // a client that never finishes its request: the server would wait for it until its headers
        // timeout (a minute), as for one that reconnects while the hub stops and is never answered
        const stalled = yield* Effect.acquireRelease(
          Effect.async<net.Socket>((resume) => {
            const socket = net.connect({ host: "127.0.0.1", port: hub.httpPort }, () => {
              socket.write("GET /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\n")
              resume(Effect.succeed(socket))
            })
          }),
          (socket) => Effect.sync(() => socket.destroy())
        )
        assert.isFalse(stalled.destroyed)

        hub.proc.child.kill("SIGTERM")
        const exit = yield* hub.proc.exited("15 seconds")
        assert.deepStrictEqual(exit, { code: 0, signal: null }, hub.proc.stderr())
      }),
    60_000
  )
})
