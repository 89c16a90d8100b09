import type { TaskKind, TaskStatus } from "../../domain/Task.js"

export type Counts = Record<TaskStatus, number>

const zero = (): Counts => ({ waiting: 0, queued: 0, input_required: 0, leased: 0, done: 0, failed: 0, dead: 0, cancelled: 0 })

/**
 * Task counts per project and status, loaded once from the database and then kept current by the
 * writer's committed batches (on SQLite it is the only writer), so stats cost no query. On
 * PostgreSQL other hubs write too: there a fresh instance is loaded from a count per call.
 */
export class StatusCounts {
  private readonly byProject = new Map<string, Counts>()
  private readonly byKindCounts = new Map<TaskKind, Counts>()

  load(rows: ReadonlyArray<{ readonly project_id: string; readonly kind: TaskKind; readonly status: string; readonly n: number }>): void {
    for (const r of rows) this.add(r.project_id, r.status, r.n, r.kind)
  }

  add(projectId: string, status: string, delta: number, kind: TaskKind): void {
    let counts = this.byProject.get(projectId)
    if (counts === undefined) this.byProject.set(projectId, (counts = zero()))
    counts[status as TaskStatus] += delta
    let ofKind = this.byKindCounts.get(kind)
    if (ofKind === undefined) this.byKindCounts.set(kind, (ofKind = zero()))
    ofKind[status as TaskStatus] += delta
  }

  /** Over every project, by kind (kinds that never had a task are absent). */
  byKind(): ReadonlyMap<TaskKind, Readonly<Counts>> {
    return this.byKindCounts
  }

  /** Summed over `projectIds`, or over every project when undefined. */
  sum(projectIds: ReadonlyArray<string> | undefined): Counts {
    const out = zero()
    const pick = projectIds === undefined ? this.byProject.values() : projectIds.map((id) => this.byProject.get(id))
    for (const counts of pick) {
      if (counts === undefined) continue
      for (const status in out) out[status as TaskStatus] += counts[status as TaskStatus]
    }
    return out
  }
}
