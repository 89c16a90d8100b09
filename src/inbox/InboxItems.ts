import type { InboxEvent, InboxOutcome } from "../domain/Inbox.js"
import { InboxItem } from "../domain/Inbox.js"
import type { PermissionRequest, PermissionRequestStatus } from "../domain/Permission.js"
import type { Task, TaskStatus } from "../domain/Task.js"

/** Permission requests and human tasks as inbox items, and the inbox events their changes mean (pure). */

const MAX_DETAIL = 2000

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text)

const json = (value: unknown) => JSON.stringify(value, null, 2) ?? "null"

const stringField = (payload: unknown, key: string): string | undefined => {
  if (typeof payload !== "object" || payload === null) return undefined
  const value = (payload as Record<string, unknown>)[key]
  return typeof value === "string" && value.trim() !== "" ? value : undefined
}

export const permissionItem = (r: PermissionRequest): InboxItem =>
  InboxItem.make({
    id: r.id,
    kind: "permission",
    projectId: r.projectId,
    sessionId: r.sessionId,
    title: r.title,
    detail: clip(`${r.tool} ${r.subject}\n${json(r.input)}`, MAX_DETAIL),
    createdAt: r.createdAt,
    requestedBy: r.requestedBy,
    options: ["approve", "reject", "session", "always"]
  })

/**
 * A human task's title is its payload's `title` (else its `prompt`, as Kirosu clients send it);
 * its detail is the payload's `detail` (else what else the payload holds).
 */
export const humanTaskItem = (t: Task): InboxItem => {
  const title = stringField(t.payload, "title") ?? stringField(t.payload, "prompt") ?? `human task #${t.seq}`
  const detail =
    stringField(t.payload, "detail") ??
    (stringField(t.payload, "title") !== undefined ? stringField(t.payload, "prompt") : undefined) ??
    (typeof t.payload === "object" && t.payload !== null && Object.keys(t.payload).some((k) => k !== "title" && k !== "prompt")
      ? json(t.payload)
      : "")
  return InboxItem.make({
    id: t.id,
    kind: "human_task",
    projectId: t.projectId,
    taskId: t.id,
    title: clip(title.split("\n")[0] ?? title, 200),
    detail: clip(detail, MAX_DETAIL),
    createdAt: t.createdAt,
    options: ["approve", "reject"]
  })
}

const permissionOutcome: Record<Exclude<PermissionRequestStatus, "pending">, InboxOutcome> = {
  allowed: "approved",
  rejected: "rejected",
  expired: "expired"
}

/** The event a permission request's resolution means for the inbox. */
export const permissionResolved = (id: string, status: PermissionRequestStatus): InboxEvent | undefined =>
  status === "pending" ? undefined : { _tag: "InboxItemResolved", id, kind: "permission", outcome: permissionOutcome[status] }

const taskOutcome = (status: TaskStatus): InboxOutcome => (status === "done" ? "approved" : status === "cancelled" ? "cancelled" : "rejected")

/**
 * The inbox event a task's change from status `from` (null: new) means, if any: a human task
 * entering `input_required` is added; one leaving it is resolved.
 */
export const taskInboxEvent = (t: Task, from: string | null): InboxEvent | undefined => {
  if (t.kind !== "human" || from === t.status) return undefined
  if (t.status === "input_required") return { _tag: "InboxItemAdded", item: humanTaskItem(t) }
  if (from === "input_required") return { _tag: "InboxItemResolved", id: t.id, kind: "human_task", outcome: taskOutcome(t.status) }
  return undefined
}
