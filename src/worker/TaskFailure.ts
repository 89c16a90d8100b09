import { Data } from "effect"

/**
 * Why a task run failed, as reported to the hub with `task.fail`. `retryable: false` means another
 * attempt cannot help (bad payload, a refused kind, a missing setting).
 */
export class TaskFailure extends Data.TaggedError("TaskFailure")<{
  readonly message: string
  readonly retryable: boolean
}> {
  static retryable = (message: string) => new TaskFailure({ message, retryable: true })
  static permanent = (message: string) => new TaskFailure({ message, retryable: false })
}
