import { Cause, Effect, Exit, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Workdir } from "../domain/Task.js"
import { runProcess } from "../runtime/ProcessRunner.js"
import { TaskFailure, type WorktreeChanges } from "./TaskFailure.js"
import { WorkerConfig, type WorkerConfigShape } from "./WorkerConfig.js"

/**
 * Where a task runs on a worker: `shared` (an existing directory), `isolated` (a fresh
 * `<data-dir>/workdirs/<taskId>`, removed afterwards unless kept) or `worktree` (a detached
 * `git worktree` of a repository at a ref, removed afterwards). What a worktree task leaves, also
 * when it fails, comes back as `WorktreeChanges`: the commits it made since the starting commit as
 * a patch series (and kept on the branch `kiris/<taskId>` in the repository), and its uncommitted
 * changes, untracked files included, as a diff against its last commit.
 */

export interface InWorkdir<A> {
  readonly value: A
  readonly cwd: string
  /** Everything a worktree run left behind. */
  readonly changes?: WorktreeChanges
}

/** The fields a worktree run adds to a task's result: `diff`, `commits` and, with commits, `branch`. */
export const worktreeChanges = (run: InWorkdir<unknown>): Partial<WorktreeChanges> => run.changes ?? {}

const safeName = (taskId: string) => taskId.replace(/[^A-Za-z0-9_.-]/g, "_").replace(/^\.+/, "_")

export const taskDir = (config: WorkerConfigShape, taskId: string) => path.join(config.dataDir, "workdirs", safeName(taskId))

const git = (config: WorkerConfigShape, cwd: string, args: ReadonlyArray<string>, options: ReadonlyArray<string> = []) =>
  runProcess({
    command: "git",
    args: [...options, ...args],
    cwd,
    env: config.childEnv,
    timeoutMs: 120_000,
    maxOutputBytes: config.maxOutputBytes
  }).pipe(
    Effect.mapError((e) => TaskFailure.retryable(`git ${args[0]}: ${e.message}`)),
    Effect.flatMap((r) =>
      r.exitCode === 0
        ? Effect.succeed(r)
        : Effect.fail(TaskFailure.permanent(`git ${args.join(" ")} failed (exit ${r.exitCode}): ${r.stderr.trim() || r.stdout.trim()}`))
    )
  )

const removeDir = (dir: string) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))

const isDirectory = (p: string) => {
  try {
    return fs.statSync(p).isDirectory()
  } catch {
    return false
  }
}

const shared = <A, E, R>(dir: string, use: (cwd: string) => Effect.Effect<A, E, R>) => {
  const cwd = path.resolve(dir)
  return isDirectory(cwd)
    ? Effect.map(use(cwd), (value): InWorkdir<A> => ({ value, cwd }))
    : Effect.fail(TaskFailure.permanent(`shared workdir ${cwd} does not exist on this worker or is not a directory`))
}

const isolated = <A, E, R>(config: WorkerConfigShape, taskId: string, keep: boolean, use: (cwd: string) => Effect.Effect<A, E, R>) => {
  const dir = taskDir(config, taskId)
  return Effect.acquireUseRelease(
    removeDir(dir).pipe(Effect.zipRight(Effect.sync(() => fs.mkdirSync(dir, { recursive: true })))),
    () => Effect.map(use(dir), (value): InWorkdir<A> => ({ value, cwd: dir })),
    () => (keep ? Effect.void : removeDir(dir))
  )
}

/** The branch that keeps a worktree task's commits. */
export const taskBranch = (taskId: string) => `kiris/${taskId.replace(/[^A-Za-z0-9_-]/g, "_")}`

/**
 * A worktree as it was before its task ran. Git runs on it afterwards with the git dir found then
 * and with fsmonitor and hooks off, so nothing the task left in the directory (a `.git` of its own,
 * say) chooses what git runs.
 */
interface Tree {
  readonly dir: string
  readonly gitDir: string
  readonly start: string
}

const treeGit = (config: WorkerConfigShape, tree: Tree, args: ReadonlyArray<string>) =>
  git(config, tree.dir, args, ["--git-dir", tree.gitDir, "--work-tree", tree.dir, "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null"])

/** Points `kiris/<taskId>` at the worktree's HEAD when the task committed since it started. */
const keepCommits = (config: WorkerConfigShape, tree: Tree, taskId: string) =>
  Effect.gen(function* () {
    const head = (yield* treeGit(config, tree, ["rev-parse", "--verify", "HEAD^{commit}"])).stdout.trim()
    if (head === tree.start) return undefined
    const count = Number((yield* treeGit(config, tree, ["rev-list", "--count", `${tree.start}..${head}`])).stdout.trim())
    if (!(count > 0)) return undefined
    const branch = taskBranch(taskId)
    yield* treeGit(config, tree, ["update-ref", "-m", "kiris: commits of a worktree task", `refs/heads/${branch}`, head])
    return { branch, head }
  })

const changesSince = (config: WorkerConfigShape, tree: Tree, taskId: string) =>
  Effect.gen(function* () {
    const kept = yield* keepCommits(config, tree, taskId)
    const commits = kept === undefined ? "" : (yield* treeGit(config, tree, ["format-patch", "--stdout", `${tree.start}..${kept.head}`])).stdout
    yield* treeGit(config, tree, ["add", "-A"])
    const diff = (yield* treeGit(config, tree, ["diff", "--cached", "HEAD"])).stdout
    return { diff, commits, ...(kept === undefined ? {} : { branch: kept.branch }) } satisfies WorktreeChanges
  })

/** A failure message followed by what the worktree task left. */
const withChanges = (failure: TaskFailure, changes: WorktreeChanges) => {
  const kept =
    changes.branch === undefined
      ? "no commits"
      : `its commits are kept on branch ${changes.branch}; commits (git format-patch):\n${changes.commits.trimEnd()}`
  const uncommitted = changes.diff === "" ? "no uncommitted changes" : `uncommitted changes (git diff):\n${changes.diff.trimEnd()}`
  return new TaskFailure({
    message: `${failure.message}\n\nworktree: ${kept}\n\nworktree: ${uncommitted}`,
    retryable: failure.retryable,
    worktree: changes
  })
}

const worktree = <A, E, R>(
  config: WorkerConfigShape,
  taskId: string,
  repoPath: string,
  ref: string | undefined,
  use: (cwd: string) => Effect.Effect<A, E, R>
): Effect.Effect<InWorkdir<A>, E | TaskFailure, R> => {
  const repo = path.resolve(repoPath)
  const dir = taskDir(config, taskId)
  const cleanup = Effect.gen(function* () {
    yield* git(config, repo, ["worktree", "remove", "--force", dir]).pipe(Effect.ignore)
    yield* removeDir(dir)
    yield* git(config, repo, ["worktree", "prune"]).pipe(Effect.ignore)
  })
  const add = Effect.gen(function* () {
    if (!isDirectory(repo)) return yield* TaskFailure.permanent(`worktree repository ${repo} does not exist on this worker`)
    yield* cleanup
    yield* Effect.sync(() => fs.mkdirSync(path.dirname(dir), { recursive: true }))
    yield* git(config, repo, ["worktree", "add", "--detach", dir, ref ?? "HEAD"])
    const gitDir = (yield* git(config, dir, ["rev-parse", "--absolute-git-dir"])).stdout.trim()
    const start = (yield* git(config, dir, ["rev-parse", "--verify", "HEAD^{commit}"])).stdout.trim()
    return { dir, gitDir, start } satisfies Tree
  })
  return Effect.acquireUseRelease(
    add,
    (tree) =>
      Effect.gen(function* () {
        const exit = yield* Effect.exit(use(dir))
        if (Exit.isSuccess(exit)) {
          const changes = yield* changesSince(config, tree, taskId)
          return { value: exit.value, cwd: dir, changes } satisfies InWorkdir<A>
        }
        // The task's own failure stands; its changes come with it when they can be read.
        const failure = Cause.failureOption(exit.cause)
        if (Option.isSome(failure) && failure.value instanceof TaskFailure) {
          const changes = yield* Effect.option(changesSince(config, tree, taskId))
          if (Option.isSome(changes)) return yield* Effect.fail(withChanges(failure.value, changes.value))
        } else {
          yield* keepCommits(config, tree, taskId).pipe(Effect.ignore)
        }
        return yield* Effect.failCause(exit.cause)
      }),
    // An interrupted task (cancelled, its worker stopping) still keeps its commits on the branch.
    (tree, exit) => Effect.zipRight(Exit.isInterrupted(exit) ? Effect.ignore(keepCommits(config, tree, taskId)) : Effect.void, cleanup)
  )
}

/** Runs `use` in the task's workdir (the worker's default when the task names none). */
export const withWorkdir = <A, E, R>(
  taskId: string,
  workdir: Workdir | undefined,
  use: (cwd: string) => Effect.Effect<A, E, R>
): Effect.Effect<InWorkdir<A>, E | TaskFailure, R | WorkerConfig> =>
  Effect.flatMap(WorkerConfig, (config) => {
    const chosen: Workdir =
      workdir ?? (config.defaultWorkdir === undefined ? { _tag: "isolated", keep: false } : { _tag: "shared", path: config.defaultWorkdir })
    switch (chosen._tag) {
      case "shared":
        return shared(chosen.path, use)
      case "isolated":
        return isolated(config, taskId, chosen.keep, use)
      case "worktree":
        return worktree(config, taskId, chosen.repo, chosen.ref, use)
    }
  })
