import { Data } from "effect"

/** What a worktree task leaves behind (see `Workdirs.ts`). */
export interface WorktreeChanges {
  /** Uncommitted changes (staged, unstaged and untracked) against the task's last commit. */
  readonly diff: string
  /** The commits the task made, as `git format-patch --stdout START..HEAD`; empty when it made none. */
  readonly commits: string
  /** `kiris/<taskId>`, left in the repository at the task's last commit, when it made commits. */
  readonly branch?: string
}

/**
 * Why a task run failed, as reported to the hub with `task.fail`. `retryable: false` means another
 * attempt cannot help (bad payload, a refused kind, a missing setting). A failed worktree task
 * carries its changes in `worktree`, and its message ends with them.
 */
export class TaskFailure extends Data.TaggedError("TaskFailure")<{
  readonly message: string
  readonly retryable: boolean
  readonly worktree?: WorktreeChanges
}> {
  static retryable = (message: string) => new TaskFailure({ message, retryable: true })
  static permanent = (message: string) => new TaskFailure({ message, retryable: false })
}
