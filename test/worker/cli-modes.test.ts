import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { runsCommands } from "../../src/domain/Access.js"
import { executorsLayer, gitRepo, run, taskInput, tempDir } from "./support.js"

/** The built-in cli adapters start in a mode that can edit their workdir; `adapterArgs` replace it. */

const fakeAgent = fileURLToPath(new URL("../support/fake-agent-cli.mjs", import.meta.url))
const bins = { codex: fakeAgent, claude: fakeAgent }

interface CliResult {
  readonly stdout: string
  readonly diff?: string
}

const argsOf = (stdout: string) => JSON.parse(/^args: (.*)$/m.exec(stdout)?.[1] ?? "null") as Array<string>

describe("cli adapter modes", () => {
  it.scopedLive("codex runs with a workspace-write sandbox, so a worktree task's edit comes back in its diff", () =>
    Effect.gen(function* () {
      const repo = gitRepo()
      const result = (yield* run(
        taskInput("cli", { prompt: "add a .gitignore", adapter: "codex", workdir: { _tag: "worktree", repo: repo.dir } })
      ).pipe(Effect.provide(executorsLayer({ bins })))) as CliResult
      assert.deepStrictEqual(argsOf(result.stdout), ["exec", "--skip-git-repo-check", "--sandbox", "workspace-write", "--", "add a .gitignore"])
      assert.include(result.stdout, "edited")
      assert.include(result.diff, "diff --git a/.gitignore b/.gitignore")
      assert.include(result.diff, "+node_modules/")
      assert.strictEqual(repo.git("status", "--porcelain"), "")
    })
  )

  it.scopedLive("claude runs with --permission-mode acceptEdits and edits only its own workdir", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const result = (yield* run(taskInput("cli", { prompt: "add a .gitignore", adapter: "claude", workdir: { _tag: "shared", path: dir } })).pipe(
        Effect.provide(executorsLayer({ bins }))
      )) as CliResult
      assert.deepStrictEqual(argsOf(result.stdout), ["-p", "--permission-mode", "acceptEdits", "--", "add a .gitignore"])
      assert.strictEqual(fs.readFileSync(path.join(dir, ".gitignore"), "utf8"), "node_modules/\n")
    })
  )

  it.scopedLive("a prompt that looks like a flag stays the prompt", () =>
    Effect.gen(function* () {
      const prompt = "--dangerously-bypass-approvals-and-sandbox"
      const result = (yield* run(taskInput("cli", { prompt, adapter: "codex", workdir: { _tag: "isolated" } })).pipe(
        Effect.provide(executorsLayer({ bins }))
      )) as CliResult
      assert.deepStrictEqual(argsOf(result.stdout), ["exec", "--skip-git-repo-check", "--sandbox", "workspace-write", "--", prompt])
    })
  )

  it.scopedLive("adapterArgs replace the mode flags on a --trust-shell worker", () =>
    Effect.gen(function* () {
      const repo = gitRepo()
      const result = (yield* run(
        taskInput("cli", {
          prompt: "look only",
          adapter: "codex",
          adapterArgs: ["--sandbox", "read-only"],
          workdir: { _tag: "worktree", repo: repo.dir }
        })
      ).pipe(Effect.provide(executorsLayer({ bins, trustShell: true })))) as CliResult
      assert.deepStrictEqual(argsOf(result.stdout), ["exec", "--skip-git-repo-check", "--sandbox", "read-only", "--", "look only"])
      assert.include(result.stdout, "read-only: not editing")
      assert.strictEqual(result.diff, "")
    })
  )

  it.scopedLive("a worker without --trust-shell refuses adapterArgs before starting anything", () =>
    Effect.gen(function* () {
      const dir = tempDir()
      const error = yield* Effect.flip(
        run(
          taskInput("cli", {
            prompt: "p",
            adapter: "claude",
            adapterArgs: ["--permission-mode", "acceptEdits"],
            workdir: { _tag: "shared", path: dir }
          })
        ).pipe(Effect.provide(executorsLayer({ bins })))
      )
      assert.include(error.message, "--trust-shell")
      assert.isFalse(error.retryable)
      assert.deepStrictEqual(fs.readdirSync(dir), [])
    })
  )

  it.scopedLive("adapterArgs must be a bounded list of strings, and not with the custom adapter", () =>
    Effect.gen(function* () {
      const layer = executorsLayer({ bins, trustShell: true })
      const refused = (payload: unknown) => Effect.flip(run(taskInput("cli", payload)).pipe(Effect.provide(layer)))
      const notStrings = yield* refused({ prompt: "p", adapter: "codex", adapterArgs: ["--sandbox", 1] })
      assert.include(notStrings.message, "invalid cli payload")
      assert.isFalse(notStrings.retryable)
      const tooMany = yield* refused({ prompt: "p", adapter: "codex", adapterArgs: Array.from({ length: 65 }, () => "-v") })
      assert.include(tooMany.message, "invalid cli payload")
      const tooLong = yield* refused({ prompt: "p", adapter: "codex", adapterArgs: ["x".repeat(4097)] })
      assert.include(tooLong.message, "invalid cli payload")
      const custom = yield* refused({ prompt: "p", adapter: "custom", template: "echo {prompt}", adapterArgs: [] })
      assert.include(custom.message, "adapterArgs apply to the codex, kiro and claude adapters")
    })
  )

  it("adapterArgs count as running commands (the execute grant)", () => {
    assert.isFalse(runsCommands("cli", { prompt: "p", adapter: "codex" }))
    assert.isTrue(runsCommands("cli", { prompt: "p", adapter: "codex", adapterArgs: ["--dangerously-bypass-approvals-and-sandbox"] }))
    assert.isTrue(runsCommands("cli", { prompt: "p", adapter: "claude", adapterArgs: [] }))
    assert.isTrue(runsCommands("cli", { prompt: "p", adapter: "custom", template: "{prompt}" }))
  })
})
