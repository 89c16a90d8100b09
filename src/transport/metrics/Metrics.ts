import { Effect } from "effect"

type Labels = Readonly<Record<string, string>>

const key = (name: string, labels: Labels) =>
  `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`)
    .join(",")}}`

/**
 * Counters and gauges for `/metrics`, rendered as Prometheus text. Updates are synchronous and
 * cheap (they sit on the per-request path); the state belongs to this layer only.
 */
export class Metrics extends Effect.Service<Metrics>()("kiris/Metrics", {
  sync: () => {
    const help = new Map<string, { type: "counter" | "gauge"; help: string }>([
      ["kiris_http_requests_total", { type: "counter", help: "HTTP requests by method, route and status" }],
      ["kiris_open_connections", { type: "gauge", help: "Open RPC connections by transport" }],
      ["kiris_connections_total", { type: "counter", help: "RPC connections accepted by transport" }],
      ["kiris_rpc_calls_total", { type: "counter", help: "RPC calls by tag and outcome" }],
      ["kiris_rpc_in_flight", { type: "gauge", help: "Unary RPC requests being handled" }],
      ["kiris_rpc_frame_errors_total", { type: "counter", help: "Rejected RPC frames by transport and reason" }],
      ["kiris_login_throttled_total", { type: "counter", help: "Logins refused because their user name had too many recent failures" }]
    ])
    const values = new Map<string, { name: string; value: number }>()

    const add = (name: string, labels: Labels, delta: number) => {
      const k = key(name, labels)
      const entry = values.get(k)
      if (entry) entry.value += delta
      else values.set(k, { name, value: delta })
    }

    const render = () => {
      const lines: Array<string> = []
      for (const [name, meta] of help) {
        lines.push(`# HELP ${name} ${meta.help}`, `# TYPE ${name} ${meta.type}`)
        for (const [k, entry] of values) if (entry.name === name) lines.push(`${k} ${entry.value}`)
      }
      return lines.join("\n") + "\n"
    }

    return {
      inc: (name: string, labels: Labels = {}) => add(name, labels, 1),
      add,
      value: (name: string, labels: Labels = {}) => values.get(key(name, labels))?.value ?? 0,
      render
    } as const
  }
}) {}
