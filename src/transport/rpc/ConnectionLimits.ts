import type { RequestEncoded } from "@effect/rpc/RpcMessage"
import type { Metrics } from "../metrics/Metrics.js"

export interface RequestLimits {
  /** Requests of one connection awaiting their Exit at once; more get an error reply each. */
  readonly maxInFlight: number
  /** Unary requests of one connection handed to the server at once; later ones wait in order. */
  readonly maxRunning: number
}

/**
 * What one connection has open, held to its limits and counted for `/metrics`: requests awaiting
 * their Exit (by id, with their tag), the unary ones among them (streams are open-ended, so
 * shutdown does not wait for them), and the unary requests the server is running, with those
 * waiting their turn in order.
 */
export const makeConnectionLimits = (limits: RequestLimits, metrics: Metrics) => {
  const open = new Map<string, string>()
  const unary = new Set<string>()
  const running = new Set<string>()
  const queued: Array<RequestEncoded> = []

  return {
    /** The tag of the open request using `id`, if any (a new request may not reuse it). */
    openTag: (id: string): string | undefined => open.get(id),

    /** No more requests may open now. */
    inFlightFull: (): boolean => open.size >= limits.maxInFlight,

    /** A request now awaits its Exit. */
    opened: (id: string, tag: string, kind: "stream" | "unary" | "waits") => {
      open.set(id, tag)
      if (kind !== "stream") {
        unary.add(id)
        metrics.add("kiris_rpc_in_flight", {}, 1)
      }
    },

    /** Marks a unary request running and returns true, or queues it (false) when `maxRunning` run already. */
    runOrQueue: (request: RequestEncoded): boolean => {
      if (running.size >= limits.maxRunning) {
        queued.push(request)
        return false
      }
      running.add(request.id)
      return true
    },

    hasQueued: (): boolean => queued.length > 0,

    /** The next waiting request, now marked running, when there is room for it. */
    nextQueued: (): RequestEncoded | undefined => {
      if (queued.length === 0 || running.size >= limits.maxRunning) return undefined
      const next = queued.shift()!
      running.add(next.id)
      return next
    },

    /** Takes the request `id` out of the queue, marked running, if it is waiting its turn (to interrupt it). */
    startWaiting: (id: string): RequestEncoded | undefined => {
      const i = queued.findIndex((r) => r.id === id)
      if (i < 0) return undefined
      const [waiting] = queued.splice(i, 1)
      running.add(waiting!.id)
      return waiting
    },

    /** The request's Exit was sent: it is closed, and counted by tag and outcome. */
    exited: (id: string, exit: unknown) => {
      if (unary.delete(id)) metrics.add("kiris_rpc_in_flight", {}, -1)
      running.delete(id)
      const tag = open.get(id)
      if (tag !== undefined) {
        open.delete(id)
        const e = exit as { _tag: string; cause?: { _tag?: string } }
        const result = e._tag === "Success" ? "success" : e.cause?._tag === "Fail" ? "failure" : e.cause?._tag === "Die" ? "defect" : "interrupted"
        metrics.inc("kiris_rpc_calls_total", { tag, outcome: result })
      }
    },

    /** The server refused the request outright: it gets no Exit. */
    refused: (id: string) => {
      open.delete(id)
      running.delete(id)
      if (unary.delete(id)) metrics.add("kiris_rpc_in_flight", {}, -1)
    },

    /** The connection closed: nothing of it is open any more. */
    release: () => {
      metrics.add("kiris_rpc_in_flight", {}, -unary.size)
      unary.clear()
      open.clear()
      running.clear()
      queued.length = 0
    }
  } as const
}
