import type { Task } from "../../domain/Task.js"
import type { BatchEffects } from "../../queue/sql/BatchEffects.js"
import * as K from "./KirisMetrics.js"

const since = (from: number, to: number) => Math.max(0, to - from) / 1000

const observeMove = (t: Task, from: string | null, now: number) => {
  const kind = { kind: t.kind }
  if (from === null) K.add(K.tasksEnqueued, kind, 1)
  if (t.status === "leased" && from !== "leased") {
    K.observe(K.dispatchSeconds, kind, since(Math.max(t.createdAt, t.runAfter), t.startedAt ?? now))
  }
  if (from === "leased" && t.status !== "leased" && t.startedAt !== null) {
    K.observe(K.runSeconds, kind, since(t.startedAt, t.finishedAt ?? now))
  }
  if (t.status === "done") K.add(K.tasksCompleted, kind, 1)
  else if (t.status === "failed") K.add(K.tasksFailed, kind, 1)
  else if (t.status === "dead") K.add(K.tasksDead, kind, 1)
}

/** Counts what one committed queue batch did: enqueues, leases, ends, lease expiries. */
export const recordQueueMetrics = (fx: BatchEffects): void => {
  for (const [task, from] of fx.moves) observeMove(task, from, fx.now)
  for (const kind of fx.expiredKinds) K.add(K.leaseExpiries, { kind }, 1)
}

/** Sets the task gauges from the queue's in-memory counts: every kind × status, zeros included. */
export const setTaskGauges = (counts: ReadonlyMap<string, Readonly<Record<string, number>>>): void => {
  for (const kind of K.taskKinds) {
    const ofKind = counts.get(kind)
    for (const status of K.taskStatuses) K.set(K.tasks, { kind, status }, ofKind?.[status] ?? 0)
  }
}
