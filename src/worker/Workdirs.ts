import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Workdir } from "../domain/Task.js"
import { runProcess } from "./Process.js"
import { TaskFailure } from "./TaskFailure.js"
import { WorkerConfig, type WorkerConfigShape } from "./WorkerConfig.js"

/**
 * Where a task runs on a worker: `shared` (an existing directory), `isolated` (a fresh
 * `<data-dir>/workdirs/<taskId>`, removed afterwards unless kept) or `worktree` (a `git worktree`
 * of a repository at a ref, whose changes, untracked files included, come back as a diff).
 */

export interface InWorkdir<A> {
  readonly value: A
  readonly cwd: string
  /** `git diff` of everything the task changed, for worktree runs. */
  readonly diff?: string
}

const safeName = (taskId: string) => taskId.replace(/[^A-Za-z0-9_.-]/g, "_").replace(/^\.+/, "_")

export const taskDir = (config: WorkerConfigShape, taskId: string) => path.join(config.dataDir, "workdirs", safeName(taskId))

const git = (config: WorkerConfigShape, cwd: string, args: ReadonlyArray<string>) =>
  runProcess({ command: "git", args, cwd, env: config.childEnv, timeoutMs: 120_000, maxOutputBytes: config.maxOutputBytes }).pipe(
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

const worktree = <A, E, R>(
  config: WorkerConfigShape,
  taskId: string,
  repoPath: string,
  ref: string | undefined,
  use: (cwd: string) => Effect.Effect<A, E, R>
) => {
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
  })
  return Effect.acquireUseRelease(
    add,
    () =>
      Effect.gen(function* () {
        const value = yield* use(dir)
        yield* git(config, dir, ["add", "-A"])
        const diff = yield* git(config, dir, ["diff", "--cached", "HEAD"])
        return { value, cwd: dir, diff: diff.stdout } satisfies InWorkdir<A>
      }),
    () => cleanup
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
