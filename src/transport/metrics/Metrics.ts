import { Effect, Metric } from "effect"
import * as K from "./KirisMetrics.js"
import { render } from "./PrometheusText.js"

type Labels = Readonly<Record<string, string>>

/** The transport metrics counted by name from plain callbacks (the socket protocols, logins). */
const byName = {
  kiris_http_requests_total: K.httpRequests,
  kiris_open_connections: K.openConnections,
  kiris_connections_total: K.connectionsTotal,
  kiris_rpc_calls_total: K.rpcCalls,
  kiris_rpc_in_flight: K.rpcInFlight,
  kiris_rpc_frame_errors_total: K.rpcFrameErrors,
  kiris_login_throttled_total: K.loginThrottled
} as const

export type MetricName = keyof typeof byName

/**
 * Updates and reads of the Effect metrics of KirisMetrics.ts by name, and their Prometheus text.
 * The metrics themselves are process-wide; only the count of unary RPCs this hub is handling is the
 * instance's own (shutdown waits for it to reach zero).
 */
export class Metrics extends Effect.Service<Metrics>()("kiris/Metrics", {
  sync: () => {
    let inFlight = 0
    const add = (name: MetricName, labels: Labels, delta: number) => {
      if (name === "kiris_rpc_in_flight") inFlight += delta
      K.add(byName[name], labels, delta)
    }
    return {
      inc: (name: MetricName, labels: Labels = {}) => add(name, labels, 1),
      add,
      /** The process-wide value, except `kiris_rpc_in_flight`: this hub's own requests. */
      value: (name: MetricName, labels: Labels = {}) => (name === "kiris_rpc_in_flight" ? inFlight : K.valueOf(byName[name], labels)),
      /** Every `kiris_` metric as Prometheus text (gauges read at scrape time must be set before). */
      render: () => render(Metric.unsafeSnapshot(), { include: (name) => name.startsWith("kiris_"), declared: K.declared })
    } as const
  }
}) {}
