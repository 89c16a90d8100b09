import { MetricState, Option } from "effect"
import type { MetricPair } from "effect"

/**
 * Renders a snapshot of Effect metrics (`Metric.unsafeSnapshot()`) in the Prometheus text
 * exposition format 0.0.4: one `# HELP` and `# TYPE` per metric name, then its series sorted by
 * labels. Counters and gauges are one sample each; histograms are cumulative `_bucket{le}` samples
 * ending with `le="+Inf"`, then `_sum` and `_count`; summaries are `{quantile}` samples, `_sum` and
 * `_count`. Frequencies become a counter per value (label `key`).
 */

type Family = { type: "counter" | "gauge" | "histogram" | "summary"; help: string; lines: Array<[string, string]> }

const escapeHelp = (s: string) => s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")
export const escapeLabelValue = (s: string) => s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")
const labelName = (s: string) => {
  const clean = s.replace(/[^a-zA-Z0-9_]/g, "_")
  return /^[a-zA-Z_]/.test(clean) ? clean : `_${clean}`
}
export const metricName = (s: string) => {
  const clean = s.replace(/[^a-zA-Z0-9_:]/g, "_")
  return /^[a-zA-Z_:]/.test(clean) ? clean : `_${clean}`
}

export const formatNumber = (n: number | bigint): string => {
  if (typeof n === "bigint") return n.toString()
  if (Number.isNaN(n)) return "NaN"
  if (n === Infinity) return "+Inf"
  if (n === -Infinity) return "-Inf"
  return String(n)
}

const labelText = (labels: ReadonlyArray<readonly [string, string]>) =>
  labels.length === 0 ? "" : `{${labels.map(([k, v]) => `${labelName(k)}="${escapeLabelValue(v)}"`).join(",")}}`

export const render = (
  pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>,
  options: {
    /** Which metric names to show (default all). */
    readonly include?: (name: string) => boolean
    /** Families shown (HELP and TYPE) even before they have a sample. */
    readonly declared?: ReadonlyArray<{ readonly name: string; readonly type: Family["type"]; readonly help: string }>
  } = {}
): string => {
  const include = options.include ?? (() => true)
  const families = new Map<string, Family>()
  for (const d of options.declared ?? []) families.set(metricName(d.name), { type: d.type, help: d.help, lines: [] })
  const family = (name: string, type: Family["type"], help: string) => {
    let f = families.get(name)
    if (f === undefined) families.set(name, (f = { type, help, lines: [] }))
    return f
  }
  for (const pair of pairs) {
    const { name: rawName, description, tags } = pair.metricKey
    if (!include(rawName)) continue
    const name = metricName(rawName)
    const help = Option.getOrElse(description, () => name)
    const labels: ReadonlyArray<readonly [string, string]> = tags.map((t) => [t.key, t.value] as const)
    const sortKey = labelText(labels)
    const state = pair.metricState
    if (MetricState.isCounterState(state)) {
      family(name, "counter", help).lines.push([sortKey, `${name}${labelText(labels)} ${formatNumber(state.count)}`])
    } else if (MetricState.isGaugeState(state)) {
      family(name, "gauge", help).lines.push([sortKey, `${name}${labelText(labels)} ${formatNumber(state.value)}`])
    } else if (MetricState.isHistogramState(state)) {
      const out: Array<string> = []
      let sawInf = false
      for (const [bound, cumulative] of state.buckets) {
        if (bound === Infinity) sawInf = true
        out.push(`${name}_bucket${labelText([...labels, ["le", formatNumber(bound)]])} ${cumulative}`)
      }
      if (!sawInf) out.push(`${name}_bucket${labelText([...labels, ["le", "+Inf"]])} ${state.count}`)
      out.push(`${name}_sum${labelText(labels)} ${formatNumber(state.sum)}`, `${name}_count${labelText(labels)} ${state.count}`)
      family(name, "histogram", help).lines.push([sortKey, out.join("\n")])
    } else if (MetricState.isSummaryState(state)) {
      const out: Array<string> = []
      for (const [q, value] of state.quantiles) {
        out.push(
          `${name}${labelText([...labels, ["quantile", formatNumber(q)]])} ${Option.match(value, { onNone: () => "NaN", onSome: formatNumber })}`
        )
      }
      out.push(`${name}_sum${labelText(labels)} ${formatNumber(state.sum)}`, `${name}_count${labelText(labels)} ${state.count}`)
      family(name, "summary", help).lines.push([sortKey, out.join("\n")])
    } else if (MetricState.isFrequencyState(state)) {
      for (const [key, count] of state.occurrences) {
        const withKey = [...labels, ["key", key] as const]
        family(name, "counter", help).lines.push([labelText(withKey), `${name}${labelText(withKey)} ${count}`])
      }
    }
  }
  const out: Array<string> = []
  for (const name of [...families.keys()].sort()) {
    const f = families.get(name)!
    out.push(`# HELP ${name} ${escapeHelp(f.help)}`, `# TYPE ${name} ${f.type}`)
    for (const [, text] of f.lines.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) out.push(text)
  }
  return out.length === 0 ? "" : out.join("\n") + "\n"
}
