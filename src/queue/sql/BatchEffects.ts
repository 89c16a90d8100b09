import type { TaskId, WorkerId } from "../../domain/Ids.js"
import type { InboxEvent } from "../../domain/Inbox.js"
import type { Task, TaskKind } from "../../domain/Task.js"
import { taskInboxEvent } from "../../inbox/InboxItems.js"
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
  /** Status count changes by project and kind: `[projectId, status, delta, kind]`. */
  readonly counts: Array<readonly [string, string, number, TaskKind]> = []
  /** Status changes (`from` null: new), for the queue metrics. */
  readonly moves: Array<readonly [Task, string | null]> = []
  /** Kinds of the tasks whose lease expired, one entry each. */
  readonly expiredKinds: Array<TaskKind> = []
  /** Changes to the hot-task cache, applied once the batch commits (null: neither queued nor leased now). */
  readonly hotChanges: Array<readonly [TaskId, Task | null]> = []
  /** Human tasks that started or stopped waiting for input, as inbox events, in order. */
  readonly inbox: Array<{ readonly task: Task; readonly event: InboxEvent }> = []
  /** `hot`: committed queued (some) and leased (all) tasks as of the batch start (see TaskQueueSql). */
  constructor(
    readonly now: number,
    readonly hot: ReadonlyMap<TaskId, Task>
  ) {}

  /** Records a row as it is after a transition from status `from` (null: new) and returns it as a Task. */
  row(r: TaskRow, from: string | null): Task {
    return this.task(toTask(r), from, r.concurrency_key !== null)
  }

  task(t: Task, from: string | null, keyed = t.concurrencyKey !== null): Task {
    if (from !== t.status) {
      if (from !== null) this.counts.push([t.projectId, from, -1, t.kind])
      this.counts.push([t.projectId, t.status, 1, t.kind])
      this.moves.push([t, from])
      const event = taskInboxEvent(t, from)
      if (event !== undefined) this.inbox.push({ task: t, event })
    }
    this.hotChanges.push([t.id, t.status === "queued" || t.status === "leased" ? t : null])
    this.changed.push(t)
    this.latest.set(t.id, t)
    if (t.status === "queued" && t.runAfter <= this.now) this.wakeKinds.add(t.kind)
    else if (keyed && t.status !== "leased") this.wakeKinds.add(t.kind)
    if (isTerminal(t.status)) this.ended.push(t.id)
    return t
  }

  rows(rs: ReadonlyArray<TaskRow>, from: string | ((r: TaskRow) => string)): Array<Task> {
    return rs.map((r) => this.row(r, typeof from === "string" ? from : from(r)))
  }
}
