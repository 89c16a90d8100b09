import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { executorsLayer, fakeCli, gitRepo, run, taskInput, tempDir } from "./support.js"

describe("worktree workdirs", () => {
  it.scopedLive("runs in a fresh worktree, returns the diff with untracked files, then removes the worktree", () =>
    Effect.gen(function* () {
      const repo = gitRepo()
      const dataDir = tempDir()
      const command = "echo changed >> README.md && echo new > added.txt && git rev-parse --show-toplevel"
      const result = (yield* run(taskInput("shell", { command, workdir: { _tag: "worktree", repo: repo.dir } })).pipe(
        Effect.provide(executorsLayer({ trustShell: true, dataDir }))
      )) as { stdout: string; diff: string }
      const top = result.stdout.trim()
      assert.isTrue(top.startsWith(path.join(fs.realpathSync(dataDir), "workdirs")))
      assert.include(result.diff, "diff --git a/README.md b/README.md")
      assert.include(result.diff, "+changed")
      assert.include(result.diff, "diff --git a/added.txt b/added.txt")
      assert.include(result.diff, "+new")
      assert.isFalse(fs.existsSync(top))
      assert.notInclude(repo.git("worktree", "list"), top)
      // the repository itself is untouched
      assert.strictEqual(fs.readFileSync(path.join(repo.dir, "README.md"), "utf8"), "hello\n")
      assert.strictEqual(repo.git("status", "--porcelain"), "")
    })
  )

  it.scopedLive("checks out the given ref, for cli tasks too", () =>
    Effect.gen(function* () {
      const repo = gitRepo()
      repo.git("checkout", "-q", "-b", "feature")
      fs.writeFileSync(path.join(repo.dir, "feature.txt"), "feature\n")
      repo.git("add", "-A")
      repo.git("commit", "-q", "-m", "feature")
      repo.git("checkout", "-q", "main")
      const result = (yield* run(
        taskInput("cli", { prompt: "write it", adapter: "codex", workdir: { _tag: "worktree", repo: repo.dir, ref: "feature" } })
      ).pipe(Effect.provide(executorsLayer({ bins: { codex: fakeCli } })))) as { stdout: string; diff: string }
      assert.include(result.stdout, "fake-cli: write it")
      assert.include(result.diff, "diff --git a/fake-cli-output.txt b/fake-cli-output.txt")
      assert.notInclude(result.diff, "feature.txt")
    })
  )

  it.scopedLive("a path that is not a repository fails permanently", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        run(taskInput("shell", { command: "true", workdir: { _tag: "worktree", repo: tempDir() } })).pipe(
          Effect.provide(executorsLayer({ trustShell: true }))
        )
      )
      assert.include(error.message, "git worktree add")
      assert.isFalse(error.retryable)
    })
  )
})
