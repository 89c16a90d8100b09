import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { TaskFailure } from "../../src/worker/TaskFailure.js"
import { eventually, executorsLayer, gitRepo, run, taskInput, tempDir } from "./support.js"

/** A worktree task returns its commits (as patches and a branch) and its uncommitted changes. */

const fakeAgent = fileURLToPath(new URL("../support/fake-agent-cli.mjs", import.meta.url))

interface WorktreeResult {
  readonly stdout: string
  readonly diff: string
  readonly commits: string
  readonly branch?: string
}

const commitAndEdit = [
  "echo committed > committed.txt",
  "git add committed.txt",
  "git commit -q -m 'task commit'",
  "echo uncommitted >> README.md",
  "echo new > untracked.txt"
].join(" && ")

describe("worktree changes", () => {
  it.scopedLive("commits come back as a patch series and a branch, uncommitted changes as the diff", () =>
    Effect.gen(function* () {
      const repo = gitRepo()
      const before = repo.git("rev-parse", "main").trim()
      const input = taskInput("shell", { command: commitAndEdit, workdir: { _tag: "worktree", repo: repo.dir } })
      const result = (yield* run(input).pipe(Effect.provide(executorsLayer({ trustShell: true })))) as WorktreeResult
      assert.strictEqual(result.branch, `kiris/${input.taskId}`)
      assert.include(result.commits, "Subject: [PATCH] task commit")
      assert.include(result.commits, "diff --git a/committed.txt b/committed.txt")
      assert.include(result.commits, "+committed")
      assert.notInclude(result.commits, "untracked.txt")
      assert.include(result.diff, "diff --git a/README.md b/README.md")
      assert.include(result.diff, "+uncommitted")
      assert.include(result.diff, "diff --git a/untracked.txt b/untracked.txt")
      assert.notInclude(result.diff, "committed.txt b/committed.txt")
      // the branch keeps the commit after the worktree is gone; the checked-out branch is untouched
      assert.strictEqual(repo.git("log", "-1", "--format=%s", `kiris/${input.taskId}`).trim(), "task commit")
      assert.strictEqual(repo.git("rev-parse", `kiris/${input.taskId}^`).trim(), before)
      assert.strictEqual(repo.git("show", `kiris/${input.taskId}:committed.txt`), "committed\n")
      assert.strictEqual(repo.git("rev-parse", "main").trim(), before)
      assert.strictEqual(repo.git("status", "--porcelain"), "")
      assert.strictEqual(repo.git("worktree", "list").trim().split("\n").length, 1)
    })
  )

  it.scopedLive("a task without commits returns empty commits and leaves no branch", () =>
    Effect.gen(function* () {
      const repo = gitRepo()
      const input = taskInput("shell", { command: "echo more >> README.md", workdir: { _tag: "worktree", repo: repo.dir } })
      const result = (yield* run(input).pipe(Effect.provide(executorsLayer({ trustShell: true })))) as WorktreeResult
      assert.strictEqual(result.commits, "")
      assert.isUndefined(result.branch)
      assert.include(result.diff, "+more")
      assert.strictEqual(repo.git("branch", "--list", "kiris/*"), "")
    })
  )

  it.scopedLive("a failing task still carries its commits and uncommitted changes in its error", () =>
    Effect.gen(function* () {
      const repo = gitRepo()
      const input = taskInput("shell", { command: `${commitAndEdit} && exit 3`, workdir: { _tag: "worktree", repo: repo.dir } })
      const error = (yield* Effect.flip(run(input).pipe(Effect.provide(executorsLayer({ trustShell: true }))))) as TaskFailure
      assert.match(error.message, /^command exited with code 3/)
      assert.isTrue(error.retryable)
      const branch = `kiris/${input.taskId}`
      assert.include(error.message, `its commits are kept on branch ${branch}`)
      assert.include(error.message, "Subject: [PATCH] task commit")
      assert.include(error.message, "+uncommitted")
      assert.strictEqual(error.worktree?.branch, branch)
      assert.include(error.worktree?.commits, "diff --git a/committed.txt b/committed.txt")
      assert.include(error.worktree?.diff, "diff --git a/untracked.txt b/untracked.txt")
      assert.strictEqual(repo.git("log", "-1", "--format=%s", branch).trim(), "task commit")
    })
  )

  it.scopedLive("a cli agent's commit and edit come back too, also when it fails", () =>
    Effect.gen(function* () {
      const repo = gitRepo()
      const layer = (exit: string) =>
        executorsLayer({ bins: { codex: fakeAgent }, childEnv: { ...process.env, FAKE_AGENT_COMMIT: "1", FAKE_AGENT_EXIT: exit } })
      const payload = { prompt: "add a .gitignore", adapter: "codex", workdir: { _tag: "worktree", repo: repo.dir } }
      const ok = taskInput("cli", payload)
      const result = (yield* run(ok).pipe(Effect.provide(layer("0")))) as WorktreeResult
      assert.strictEqual(result.branch, `kiris/${ok.taskId}`)
      assert.include(result.commits, "Subject: [PATCH] fake agent commit")
      assert.include(result.diff, "diff --git a/.gitignore b/.gitignore")

      const failing = taskInput("cli", payload)
      const error = (yield* Effect.flip(run(failing).pipe(Effect.provide(layer("4"))))) as TaskFailure
      assert.match(error.message, /^codex exited with code 4/)
      assert.include(error.message, `kiris/${failing.taskId}`)
      assert.include(error.worktree?.commits, "Subject: [PATCH] fake agent commit")
      assert.include(error.worktree?.diff, "+node_modules/")
      assert.strictEqual(repo.git("log", "-1", "--format=%s", `kiris/${failing.taskId}`).trim(), "fake agent commit")
    })
  )

  it.scopedLive("a cancelled task keeps its commits on the branch", () =>
    Effect.gen(function* () {
      const repo = gitRepo()
      const started = path.join(tempDir(), "started")
      const input = taskInput("shell", {
        command: `${commitAndEdit} && touch ${started} && sleep 60`,
        workdir: { _tag: "worktree", repo: repo.dir }
      })
      const fiber = yield* Effect.fork(run(input).pipe(Effect.provide(executorsLayer({ trustShell: true }))))
      yield* eventually("the task to commit", () => fs.existsSync(started))
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(repo.git("log", "-1", "--format=%s", `kiris/${input.taskId}`).trim(), "task commit")
      assert.strictEqual(repo.git("worktree", "list").trim().split("\n").length, 1)
    })
  )

  it.scopedLive("a .git the task plants in its worktree does not choose what git runs afterwards", () =>
    Effect.gen(function* () {
      const repo = gitRepo()
      const marker = path.join(tempDir(), "ran")
      const plant = ["rm .git", "git init -q .", `git config core.fsmonitor 'touch ${marker}; false'`, "echo edited >> README.md"].join(" && ")
      const result = (yield* run(taskInput("shell", { command: plant, workdir: { _tag: "worktree", repo: repo.dir } })).pipe(
        Effect.provide(executorsLayer({ trustShell: true }))
      )) as WorktreeResult
      assert.isFalse(fs.existsSync(marker))
      assert.include(result.diff, "+edited")
      assert.notInclude(result.diff, ".git/")
    })
  )

  it.scopedLive("the worktree is gone afterwards either way", () =>
    Effect.gen(function* () {
      const repo = gitRepo()
      const dataDir = tempDir()
      yield* Effect.flip(
        run(taskInput("shell", { command: `${commitAndEdit} && exit 1`, workdir: { _tag: "worktree", repo: repo.dir } })).pipe(
          Effect.provide(executorsLayer({ trustShell: true, dataDir }))
        )
      )
      assert.deepStrictEqual(fs.readdirSync(`${dataDir}/workdirs`), [])
      assert.strictEqual(repo.git("worktree", "list").trim().split("\n").length, 1)
    })
  )
})
