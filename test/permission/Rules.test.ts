import { assert, describe, it } from "@effect/vitest"
import type { PermissionAction, RuleSource } from "../../src/domain/Permission.js"
import { defaultRules, evaluate, type RuleLike, type SubjectKind } from "../../src/permission/Rules.js"

const rule = (tool: string, pattern: string, action: PermissionAction, source: RuleSource = "project"): RuleLike => ({
  tool,
  pattern,
  action,
  source
})
const decide = (rules: ReadonlyArray<RuleLike>, tool: string, subject: string, kind: SubjectKind = "path") =>
  evaluate(rules, { tool, subject, kind }).action

interface Case {
  readonly name: string
  readonly rules: ReadonlyArray<RuleLike>
  readonly calls: ReadonlyArray<readonly [tool: string, subject: string, kind: SubjectKind, expected: PermissionAction]>
}

/** The precedence table documented in Rules.ts and the README: level, then specificity, then deny > ask > allow. */
const cases: ReadonlyArray<Case> = [
  {
    name: "built-in defaults alone: reading allowed, changing asks, unknown tools ask",
    rules: defaultRules,
    calls: [
      ["read", "src/a.ts", "path", "allow"],
      ["grep", ".", "path", "allow"],
      ["task", "general", "name", "allow"],
      ["write", "src/a.ts", "path", "ask"],
      ["edit", "src/a.ts", "path", "ask"],
      ["bash", "ls", "command", "ask"],
      ["mystery", "x", "path", "ask"]
    ]
  },
  { name: "no rule at all asks", rules: [], calls: [["read", "x", "path", "ask"]] },
  {
    name: "project `* * allow` overrides the built-in asks of bash, write and edit",
    rules: [...defaultRules, rule("*", "*", "allow")],
    calls: [
      ["bash", "rm -rf build", "command", "allow"],
      ["write", "src/a.ts", "path", "allow"],
      ["edit", "src/a.ts", "path", "allow"],
      ["enqueue", "shell", "name", "allow"]
    ]
  },
  {
    name: "project `* * ask` overrides the built-in allows of read and grep",
    rules: [...defaultRules, rule("*", "*", "ask")],
    calls: [
      ["read", "src/a.ts", "path", "ask"],
      ["grep", ".", "path", "ask"]
    ]
  },
  {
    name: "project `bash * deny` beats project `* * allow` (same pattern, exact tool)",
    rules: [...defaultRules, rule("*", "*", "allow"), rule("bash", "*", "deny")],
    calls: [
      ["bash", "ls", "command", "deny"],
      ["write", "a.txt", "path", "allow"]
    ]
  },
  {
    name: "a path-specific rule beats a wildcard one; longer literals beat shorter; a literal path beats any glob",
    rules: [rule("edit", "*", "deny"), rule("edit", "src/**", "ask"), rule("edit", "src/gen/**", "allow"), rule("edit", "src/gen/keep.ts", "deny")],
    calls: [
      ["edit", "README.md", "path", "deny"],
      ["edit", "src/a.ts", "path", "ask"],
      ["edit", "src/gen/x.ts", "path", "allow"],
      ["edit", "src/gen/keep.ts", "path", "deny"]
    ]
  },
  {
    name: "the pattern counts before the tool: `* .env deny` beats `read * allow`",
    rules: [...defaultRules, rule("read", "*", "allow"), rule("*", ".env", "deny")],
    calls: [
      ["read", ".env", "path", "deny"],
      ["read", "a.txt", "path", "allow"],
      ["write", ".env", "path", "deny"]
    ]
  },
  {
    name: "`* src/** deny` beats `write * allow` under src/",
    rules: [rule("*", "src/**", "deny"), rule("write", "*", "allow")],
    calls: [
      ["write", "src/a.ts", "path", "deny"],
      ["write", "docs/a.md", "path", "allow"],
      ["edit", "src/a.ts", "path", "deny"]
    ]
  },
  {
    name: "equal specificity: deny beats allow",
    rules: [rule("bash", "git *", "allow"), rule("bash", "git *", "deny")],
    calls: [["bash", "git push", "command", "deny"]]
  },
  {
    name: "equal specificity: ask beats allow, deny beats ask",
    rules: [rule("write", "*", "allow"), rule("write", "*", "ask"), rule("edit", "*", "deny"), rule("edit", "*", "ask")],
    calls: [
      ["write", "a.ts", "path", "ask"],
      ["edit", "a.ts", "path", "deny"]
    ]
  },
  {
    name: "a session grant shares the project level: it cannot lift a project deny of equal or higher specificity",
    rules: [
      ...defaultRules,
      rule("bash", "rm *", "deny"),
      rule("bash", "rm *", "allow", "session"),
      rule("bash", "*", "allow", "session"),
      rule("bash", "curl *", "deny")
    ],
    calls: [
      ["bash", "rm -rf /", "command", "deny"],
      ["bash", "curl http://x", "command", "deny"],
      ["bash", "ls -la", "command", "allow"]
    ]
  },
  {
    name: "a more specific session grant beats a broad project ask",
    rules: [...defaultRules, rule("bash", "*", "ask"), rule("bash", "echo *", "allow", "session")],
    calls: [
      ["bash", "echo hi", "command", "allow"],
      ["bash", "ls", "command", "ask"]
    ]
  },
  {
    name: "path patterns are globs; command patterns treat `*` as any text; a command pattern with no `*` is exact",
    rules: [rule("write", "*.md", "allow"), rule("bash", "git status*", "allow"), rule("bash", "ls", "allow")],
    calls: [
      ["write", "README.md", "path", "allow"],
      ["write", "docs/guide.md", "path", "ask"],
      ["bash", "git status --short src/", "command", "allow"],
      ["bash", "git push", "command", "ask"],
      ["bash", "ls -la", "command", "ask"]
    ]
  }
]

describe("Rules.evaluate", () => {
  for (const c of cases) {
    it(c.name, () => {
      const got = c.calls.map(([tool, subject, kind]) => [tool, subject, decide(c.rules, tool, subject, kind)])
      assert.deepStrictEqual(
        got,
        c.calls.map(([tool, subject, , expected]) => [tool, subject, expected])
      )
    })
  }

  it("reports the deciding rule", () => {
    const decisive = rule("read", ".env", "deny")
    const result = evaluate([...defaultRules, decisive], { tool: "read", subject: ".env", kind: "path" })
    assert.strictEqual(result.rule, decisive)
    const allowAll = rule("*", "*", "allow")
    assert.strictEqual(evaluate([...defaultRules, allowAll], { tool: "bash", subject: "ls", kind: "command" }).rule, allowAll)
  })
})
