import type { PermissionAction, RuleSource } from "../domain/Permission.js"
import { globMatcher, hasWildcard, textPatternToRegExp } from "../glob/Glob.js"

/**
 * Pure rule evaluation. A call is (tool, subject, kind); a rule matches when its tool is the same
 * or `*` and its pattern matches the subject (`*` alone matches anything; paths use globs, commands
 * and names use `*` as "any text").
 *
 * Precedence, in this order:
 * 1. Level: stored rules (the project's, and the grants of the calling session) over the built-in
 *    defaults. When any stored rule matches, the defaults are not consulted: a project rule
 *    `* * allow` means every call is allowed, `bash` included.
 * 2. Within a level, the most specific match wins. Specificity compares the pattern first (a
 *    pattern with no wildcard beats one with wildcards; then more literal characters beat fewer),
 *    then the tool (an exact name beats `*`). So `* .env deny` beats `read * allow` for `.env`, and
 *    `bash * deny` beats `* * allow` for every command.
 * 3. At equal specificity, the stricter action wins: deny > ask > allow (whichever the source).
 * No match at all asks.
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
  return call.kind === "path" ? globMatcher(rule.pattern)(call.subject) : textPatternToRegExp(rule.pattern).test(call.subject)
}

/** Higher is more specific: [literal pattern, literal characters, exact tool]. */
export const specificity = (rule: RuleLike): readonly [number, number, number] => [
  hasWildcard(rule.pattern) ? 0 : 1,
  rule.pattern.replace(/[*?]/g, "").length,
  rule.tool === "*" ? 0 : 1
]

const compare = (a: readonly [number, number, number], b: readonly [number, number, number]) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]

/** Stored rules (project and session) form one level, above the built-in defaults. */
const levelOf: Record<RuleSource, number> = { default: 0, project: 1, session: 1 }
const actionRank: Record<PermissionAction, number> = { allow: 0, ask: 1, deny: 2 }

export interface Decision<R extends RuleLike> {
  readonly action: PermissionAction
  /** The rule that decided, if any matched. */
  readonly rule: R | undefined
}

/** Whether `a` takes precedence over `b` (both matching the call). */
const outranks = (a: RuleLike, b: RuleLike): boolean => {
  const byLevel = levelOf[a.source] - levelOf[b.source]
  if (byLevel !== 0) return byLevel > 0
  const bySpecificity = compare(specificity(a), specificity(b))
  if (bySpecificity !== 0) return bySpecificity > 0
  return actionRank[a.action] > actionRank[b.action]
}

export const evaluate = <R extends RuleLike>(rules: ReadonlyArray<R>, call: Call): Decision<R> => {
  let best: R | undefined
  for (const rule of rules) {
    if (ruleMatches(rule, call) && (best === undefined || outranks(rule, best))) best = rule
  }
  return { action: best?.action ?? "ask", rule: best }
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
