import type { PermissionAction, RuleSource } from "../domain/Permission.js"
import { globToRegExp, hasWildcard, textPatternToRegExp } from "../tools/GlobPattern.js"

/**
 * Pure rule evaluation. A call is (tool, subject, kind); a rule matches when its tool is the same
 * or `*` and its pattern matches the subject (`*` alone matches anything; paths use globs, commands
 * and names use `*` as "any text").
 *
 * Specificity, compared in order: an exact tool name beats `*`; a pattern with no wildcard beats
 * one with wildcards; more literal characters beat fewer. Among the most specific matches, `deny`
 * wins whatever its source; otherwise session overrides beat project rules beat defaults, and
 * within one source `ask` beats `allow`.
 */

export type SubjectKind = "path" | "command" | "name"

export interface RuleLike {
  readonly tool: string
  readonly pattern: string
  readonly action: PermissionAction
  readonly source: RuleSource
}

export interface Call {
  readonly tool: string
  readonly subject: string
  readonly kind: SubjectKind
}

export const ruleMatches = (rule: RuleLike, call: Call): boolean => {
  if (rule.tool !== "*" && rule.tool !== call.tool) return false
  if (rule.pattern === "*") return true
  const re = call.kind === "path" ? globToRegExp(rule.pattern) : textPatternToRegExp(rule.pattern)
  return re.test(call.subject)
}

export const specificity = (rule: RuleLike): readonly [number, number, number] => [
  rule.tool === "*" ? 0 : 1,
  hasWildcard(rule.pattern) ? 0 : 1,
  rule.pattern.replace(/[*?]/g, "").length
]

const compare = (a: readonly [number, number, number], b: readonly [number, number, number]) =>
  a[0] - b[0] || a[1] - b[1] || a[2] - b[2]

const sourceRank: Record<RuleSource, number> = { default: 0, project: 1, session: 2 }
const actionRank: Record<PermissionAction, number> = { allow: 0, ask: 1, deny: 2 }

export interface Decision<R extends RuleLike> {
  readonly action: PermissionAction
  /** The rule that decided, if any matched. */
  readonly rule: R | undefined
}

export const evaluate = <R extends RuleLike>(rules: ReadonlyArray<R>, call: Call): Decision<R> => {
  let best: R | undefined
  for (const rule of rules) {
    if (!ruleMatches(rule, call)) continue
    if (best === undefined) {
      best = rule
      continue
    }
    const bySpecificity = compare(specificity(rule), specificity(best))
    if (bySpecificity > 0) best = rule
    else if (bySpecificity === 0 && wins(rule, best)) best = rule
  }
  return { action: best?.action ?? "ask", rule: best }
}

/** At equal specificity: deny first, then the overriding source, then the stricter action. */
const wins = (a: RuleLike, b: RuleLike): boolean => {
  if ((a.action === "deny") !== (b.action === "deny")) return a.action === "deny"
  if (a.source !== b.source) return sourceRank[a.source] > sourceRank[b.source]
  return actionRank[a.action] > actionRank[b.action]
}

/** Built-in project defaults: reading is free, changing files and running commands ask. */
export const defaultRules: ReadonlyArray<RuleLike & { readonly id: string }> = [
  { id: "default:*", tool: "*", pattern: "*", action: "ask", source: "default" },
  ...(["read", "list", "glob", "grep", "task"] as const).map((tool) => ({
    id: `default:${tool}`,
    tool,
    pattern: "*",
    action: "allow" as const,
    source: "default" as const
  })),
  ...(["write", "edit", "bash", "enqueue"] as const).map((tool) => ({
    id: `default:${tool}`,
    tool,
    pattern: "*",
    action: "ask" as const,
    source: "default" as const
  }))
]
