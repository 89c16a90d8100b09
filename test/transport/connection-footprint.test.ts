import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, FiberRef, type Scope } from "effect"
import type { ProjectId } from "../../src/domain/Ids.js"
import { CurrentPrincipal } from "../../src/domain/rpc/Middleware.js"
import { EventBus } from "../../src/events/EventBus.js"
import { startHub, type TestHub } from "../support/Hub.js"
import { rawTcp, rawWebSocket, type RawConnection, request } from "../support/RawRpc.js"

/**
 * What an open connection keeps of the hub's context. Every `provideService` copies the context
 * it adds to, so a fiber that lives as long as a connection (an open subscription) must not run
 * in the hub's whole context, or each connection carries copies of every service.
 */

const CONNECTIONS = 12

/** The hub's fibers now running in a context that holds the hub's services, and those running a request as a caller. */
const census = Effect.gen(function* () {
  const fibers = yield* Fiber.roots
  let withServices = 0
  const requestContexts: Array<number> = []
  for (const fiber of fibers) {
    const context = fiber.getFiberRef(FiberRef.currentContext)
    if (Context.getOption(context, EventBus)._tag === "Some") withServices++
    if (Context.getOption(context, CurrentPrincipal)._tag === "Some") requestContexts.push(context.unsafeMap.size)
  }
  return { withServices, requestContexts } as const
})

const subscribeAll = (hub: TestHub, open: () => Effect.Effect<RawConnection, never, Scope.Scope>, projectId: ProjectId) =>
  Effect.forEach(
    Array.from({ length: CONNECTIONS }, (_, i) => i),
    () =>
      Effect.gen(function* () {
        const conn = yield* open()
        yield* conn.send(request("1", "events.subscribe", { projectId }, hub.adminKey))
        // `Ready` is the first chunk: the subscription is open
        yield* conn.next("Ready", (m) => m._tag === "Chunk" && m.requestId === "1")
        return conn
      }),
    { concurrency: 4 }
  )

describe("connection footprint", () => {
  it.scoped(
    "open subscriptions run in a context of their own, not a copy of the hub's (TCP: no fiber per connection holds the services; WebSocket: only its HTTP exchange)",
    () =>
      Effect.gen(function* () {
        const hub = yield* startHub()
        const client = yield* hub.wsClient()
        const project = yield* client.project.create({ name: "footprint" })
        const projectId = project.id as ProjectId
        const before = yield* census

        yield* subscribeAll(hub, () => rawTcp(hub.tcpPort), projectId)
        const tcp = yield* census
        assert.isAtLeast(tcp.requestContexts.length - before.requestContexts.length, CONNECTIONS, "a running request per subscription")
        for (const size of tcp.requestContexts) assert.isAtMost(size, 8, `a request's context holds ${size} services`)
        assert.isAtMost(tcp.withServices - before.withServices, 0, "TCP connections hold fibers in the hub's context")

        yield* subscribeAll(hub, () => rawWebSocket(hub.wsUrl), projectId)
        const ws = yield* census
        assert.isAtLeast(ws.requestContexts.length - tcp.requestContexts.length, CONNECTIONS)
        for (const size of ws.requestContexts) assert.isAtMost(size, 8, `a request's context holds ${size} services`)
        // the HTTP server's fiber for the upgrade request lives as long as the WebSocket
        assert.isAtMost(
          ws.withServices - tcp.withServices,
          CONNECTIONS,
          "WebSocket connections hold more than their HTTP exchange in the hub's context"
        )
      }),
    60_000
  )
})
