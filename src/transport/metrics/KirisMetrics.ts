import { Metric, MetricBoundaries, MetricKey, MetricLabel } from "effect"
import { TaskKind, TaskStatus } from "../../domain/Task.js"

/**
 * Every metric `/metrics` exposes, as Effect metrics (process-wide, in Effect's global metric
 * registry). Labels are bounded sets only: task kind and status, RPC tag, transport, HTTP route
 * pattern, model provider and name, outcome. Never a task, session, user or worker id.
 */

/** Seconds: from a few milliseconds (a lease of a waiting task) to an hour (a long agent run). */
const seconds = MetricBoundaries.fromIterable([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600])
/** Seconds an RPC takes: most answer in milliseconds, `task.wait` may hold for minutes. */
const rpcSeconds = MetricBoundaries.fromIterable([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60])

export interface Declared {
  readonly name: string
  readonly type: "counter" | "gauge" | "histogram"
  readonly help: string
}
/** Every metric defined here, so that `/metrics` shows its HELP and TYPE before its first sample. */
export const declared: Array<Declared> = []

type Labels = Readonly<Record<string, string>>

/**
 * One of our metrics: its Effect metric (for `Metric.value`, `Metric.update` and the like) and a
 * cache of the registry's hooks by label set. Updates through a cached hook cost a label-string
 * build instead of hashing a new MetricKey on every call (they sit on the queue's hot path).
 */
export interface KirisMetric<M> {
  readonly metric: M
  readonly hook: (labels: Labels) => {
    readonly update: (value: number) => void
    readonly modify: (value: number) => void
    readonly get: () => unknown
  }
}

const hooksOf = (key: MetricKey.MetricKey.Untyped): KirisMetric<never>["hook"] => {
  const cache = new Map<string, ReturnType<KirisMetric<never>["hook"]>>()
  return (labels) => {
    let id = ""
    for (const k in labels) id += `${k}\u0000${labels[k]}\u0000`
    let hook = cache.get(id)
    if (hook === undefined) {
      const tags = Object.entries(labels).map(([k, v]) => MetricLabel.make(k, v))
      hook = Metric.globalMetricRegistry.get(MetricKey.taggedWithLabels(key, tags)) as ReturnType<KirisMetric<never>["hook"]>
      cache.set(id, hook)
    }
    return hook
  }
}

const counter = (name: string, help: string): KirisMetric<Metric.Metric.Counter<number>> => {
  declared.push({ name, type: "counter", help })
  const key = MetricKey.counter(name, { description: help })
  return { metric: Metric.fromMetricKey(key), hook: hooksOf(key) }
}
const gauge = (name: string, help: string): KirisMetric<Metric.Metric.Gauge<number>> => {
  declared.push({ name, type: "gauge", help })
  const key = MetricKey.gauge(name, { description: help })
  return { metric: Metric.fromMetricKey(key), hook: hooksOf(key) }
}
const histogram = (name: string, boundaries: MetricBoundaries.MetricBoundaries, help: string): KirisMetric<Metric.Metric.Histogram<number>> => {
  declared.push({ name, type: "histogram", help })
  const key = MetricKey.histogram(name, boundaries, help)
  return { metric: Metric.fromMetricKey(key), hook: hooksOf(key) }
}

// == HTTP and RPC transports
export const httpRequests = counter("kiris_http_requests_total", "HTTP requests by method, route pattern and status")
export const openConnections = gauge("kiris_open_connections", "Open RPC connections by transport (ws, tcp, kirosu)")
export const connectionsTotal = counter("kiris_connections_total", "RPC connections accepted by transport")
export const rpcCalls = counter("kiris_rpc_calls_total", "RPC calls by tag and outcome")
export const rpcInFlight = gauge("kiris_rpc_in_flight", "Unary RPC requests being handled")
export const rpcFrameErrors = counter("kiris_rpc_frame_errors_total", "Rejected RPC frames by transport and reason")
export const rpcDuration = histogram(
  "kiris_rpc_duration_seconds",
  rpcSeconds,
  "Time to answer a unary RPC (authentication included), by tag; streams are not timed"
)
export const loginThrottled = counter("kiris_login_throttled_total", "Logins refused because their user name had too many recent failures")

// == task queue
export const tasks = gauge("kiris_tasks", "Tasks by kind and status (read at scrape time)")
export const tasksEnqueued = counter("kiris_tasks_enqueued_total", "Tasks enqueued, by kind")
export const tasksCompleted = counter("kiris_tasks_completed_total", "Tasks ended done, by kind")
export const tasksFailed = counter("kiris_tasks_failed_total", "Tasks ended failed (not retryable, or rejected), by kind")
export const tasksDead = counter("kiris_tasks_dead_total", "Tasks dead-lettered after their last attempt, by kind")
export const leaseExpiries = counter("kiris_task_lease_expiries_total", "Leases that expired because their worker stopped renewing them, by kind")
export const dispatchSeconds = histogram(
  "kiris_task_dispatch_seconds",
  seconds,
  "Time from a task becoming runnable (enqueued, or its retry time) to a worker leasing it, by kind"
)
export const runSeconds = histogram(
  "kiris_task_run_seconds",
  seconds,
  "Time from lease to the end of the attempt (done, failed, retried, cancelled or expired), by kind"
)

// == workers
export const workersConnected = gauge("kiris_workers_connected", "Swarm workers connected to this hub (read at scrape time)")
export const workerSlots = gauge("kiris_worker_slots", "Tasks the connected workers run at once, summed over their concurrency (read at scrape time)")

// == events
export const eventSubscribers = gauge("kiris_event_subscribers", "Open event subscriptions (read at scrape time)")
export const eventLagDrops = counter("kiris_event_lag_drops_total", "Event subscribers dropped because they fell too far behind")

// == agents and models
export const agentTurns = counter("kiris_agent_turns_total", "Agent turns by outcome (completed, error, cancelled, interrupted, max-steps)")
export const modelTokens = counter("kiris_model_tokens_total", "Model tokens by provider, model and direction (input, output)")
export const modelCost = counter("kiris_model_cost_dollars_total", "Model cost in US dollars by provider and model, where the price is known")

type Scalar = KirisMetric<Metric.Metric.Counter<number>> | KirisMetric<Metric.Metric.Gauge<number>>

/** Adds `delta` to a counter or gauge for one label set (synchronous: for hot paths and plain callbacks). */
export const add = (m: Scalar, labels: Labels, delta: number): void =>
  // a counter's modify is its update; a gauge's modify adds (its update sets)
  m.hook(labels).modify(delta)

export const set = (m: KirisMetric<Metric.Metric.Gauge<number>>, labels: Labels, value: number): void => m.hook(labels).update(value)

export const observe = (m: KirisMetric<Metric.Metric.Histogram<number>>, labels: Labels, value: number): void => m.hook(labels).update(value)

/** The current value of a counter or gauge for one label set. */
export const valueOf = (m: Scalar, labels: Labels = {}): number => {
  const state = m.hook(labels).get() as { readonly count?: number; readonly value?: number }
  return state.count ?? state.value ?? 0
}

export const taskKinds: ReadonlyArray<TaskKind> = TaskKind.literals
export const taskStatuses: ReadonlyArray<TaskStatus> = TaskStatus.literals
