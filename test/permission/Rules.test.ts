import { assert, describe, it } from "@effect/vitest"
import type { PermissionAction, RuleSource } from "../../src/domain/Permission.js"
import { defaultRules, evaluate, type RuleLike, type SubjectKind } from "../../src/permission/Rules.js"

const rule = (tool: string, pattern: string, action: PermissionAction, source: RuleSource = "project"): RuleLike => ({ tool, pattern, action, source })
const decide = (rules: ReadonlyArray<RuleLike>, tool: string, subject: string, kind: SubjectKind = "path") =>
  evaluate(rules, { tool, subject, kind }).action

describe("Rules.evaluate", () => {
  it("built-in defaults: reading allowed, changing asks, unknown tools ask", () => {
    assert.strictEqual(decide(defaultRules, "read", "src/a.ts"), "allow")
    assert.strictEqual(decide(defaultRules, "grep", "."), "allow")
    assert.strictEqual(decide(defaultRules, "task", "general", "name"), "allow")
    assert.strictEqual(decide(defaultRules, "write", "src/a.ts"), "ask")
    assert.strictEqual(decide(defaultRules, "edit", "src/a.ts"), "ask")
    assert.strictEqual(decide(defaultRules, "bash", "ls", "command"), "ask")
    assert.strictEqual(decide(defaultRules, "mystery", "x"), "ask")
    assert.strictEqual(decide([], "read", "x"), "ask")
  })

  it("an exact tool beats `*`", () => {
    const rules = [rule("*", "src/**", "deny"), rule("write", "*", "allow")]
    assert.strictEqual(decide(rules, "write", "src/a.ts"), "allow")
    assert.strictEqual(decide(rules, "edit", "src/a.ts"), "deny")
  })

  it("a literal pattern beats a wildcard one; longer literals beat shorter", () => {
    const rules = [rule("edit", "*", "deny"), rule("edit", "src/**", "ask"), rule("edit", "src/gen/**", "allow"), rule("edit", "src/gen/keep.ts", "deny")]
    assert.strictEqual(decide(rules, "edit", "README.md"), "deny")
    assert.strictEqual(decide(rules, "edit", "src/a.ts"), "ask")
    assert.strictEqual(decide(rules, "edit", "src/gen/x.ts"), "allow")
    assert.strictEqual(decide(rules, "edit", "src/gen/keep.ts"), "deny")
  })

  it("deny beats allow at equal specificity, whatever the source", () => {
    assert.strictEqual(decide([rule("bash", "git *", "allow"), rule("bash", "git *", "deny")], "bash", "git push", "command"), "deny")
    assert.strictEqual(decide([rule("bash", "rm *", "deny", "project"), rule("bash", "rm *", "allow", "session")], "bash", "rm -rf /", "command"), "deny")
  })

  it("session overrides beat project rules beat defaults at equal specificity; within a source ask beats allow", () => {
    assert.strictEqual(decide([...defaultRules, rule("write", "*", "allow")], "write", "a.ts"), "allow")
    assert.strictEqual(decide([rule("write", "*", "ask", "project"), rule("write", "*", "allow", "session")], "write", "a.ts"), "allow")
    assert.strictEqual(decide([rule("write", "*", "allow"), rule("write", "*", "ask")], "write", "a.ts"), "ask")
  })

  it("a more specific deny in the project still beats a broad session allow", () => {
    const rules = [...defaultRules, rule("bash", "*", "allow", "session"), rule("bash", "curl *", "deny")]
    assert.strictEqual(decide(rules, "bash", "ls -la", "command"), "allow")
    assert.strictEqual(decide(rules, "bash", "curl http://x", "command"), "deny")
  })

  it("path patterns are globs; command patterns treat `*` as any text", () => {
    const paths = [rule("write", "*.md", "allow")]
    assert.strictEqual(decide(paths, "write", "README.md"), "allow")
    assert.strictEqual(decide(paths, "write", "docs/guide.md"), "ask")
    const commands = [rule("bash", "git status*", "allow")]
    assert.strictEqual(decide(commands, "bash", "git status --short src/", "command"), "allow")
    assert.strictEqual(decide(commands, "bash", "git push", "command"), "ask")
    assert.strictEqual(decide([rule("bash", "ls", "allow")], "bash", "ls -la", "command"), "ask")
  })

  it("reports the deciding rule", () => {
    const decisive = rule("read", ".env", "deny")
    const result = evaluate([...defaultRules, decisive], { tool: "read", subject: ".env", kind: "path" })
    assert.strictEqual(result.rule, decisive)
  })
})
