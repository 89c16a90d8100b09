import { Effect, Layer } from "effect"
import { createServer, type Server } from "node:http"

/**
 * The hub's Node HTTP server, with what its shutdown needs beyond `server.close()`, which stops
 * listening only at the very end and then waits for every open connection. A client that reconnects
 * while the hub stops (a chat whose WebSocket was just closed) would otherwise be accepted, never
 * answered, and hold the exit until it gave up by itself.
 *
 * - `refuseNew`: from the moment its finalizer runs, a new connection is destroyed as it arrives.
 *   Provide it above the routes, so that it runs before their WebSocket connections are closed.
 * - `cutRemaining`: closes whatever connection is still open once the routes are done. Provide it
 *   between the routes and the server.
 */
export const makeNodeServer = () => {
  const server: Server = createServer()
  const refuseNew = Layer.scopedDiscard(
    Effect.addFinalizer(() =>
      Effect.sync(() => {
        server.on("connection", (socket) => socket.destroy())
        server.closeIdleConnections()
      })
    )
  )
  const cutRemaining = Layer.scopedDiscard(Effect.addFinalizer(() => Effect.sync(() => server.closeAllConnections())))
  return { server, refuseNew, cutRemaining } as const
}
