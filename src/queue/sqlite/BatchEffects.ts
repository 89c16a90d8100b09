import type { TaskId, WorkerId } from "../../domain/Ids.js"
import type { Task, TaskKind } from "../../domain/Task.js"
import { isTerminal, type TaskRow, toTask } from "./TaskRows.js"

/**
 * What one group commit changed, collected while its transaction runs and acted on after it commits:
 * events, "work available" pushes, cancel pushes, and waiters to wake.
 */
export class BatchEffects {
  readonly changed: Array<Task> = []
  readonly latest = new Map<TaskId, Task>()
  readonly wakeKinds = new Set<TaskKind>()
  readonly ended: Array<TaskId> = []
  readonly cancels: Array<{ readonly workerId: WorkerId; readonly taskId: TaskId }> = []
  constructor(readonly now: number) {}

  /** Records a row as it is after a transition and returns it as a Task. */
  row(r: TaskRow): Task {
    return this.task(toTask(r), r.concurrency_key !== null)
  }

  task(t: Task, keyed = t.concurrencyKey !== null): Task {
    this.changed.push(t)
    this.latest.set(t.id, t)
    if (t.status === "queued" && t.runAfter <= this.now) this.wakeKinds.add(t.kind)
    else if (keyed && t.status !== "leased") this.wakeKinds.add(t.kind)
    if (isTerminal(t.status)) this.ended.push(t.id)
    return t
  }

  rows(rs: ReadonlyArray<TaskRow>): Array<Task> {
    return rs.map((r) => this.row(r))
  }
}
