import { Schema } from "effect"
import { ProjectId, SessionId, TaskId } from "./Ids.js"

/** What waits for someone: a tool call's permission request, or a `human` task. */
export const InboxItemKind = Schema.Literal("permission", "human_task")
export type InboxItemKind = typeof InboxItemKind.Type

/**
 * An allowed answer. `approve` and `reject` answer any item; a permission request may also be
 * approved for the rest of its session (`session`) or for the whole project (`always`).
 */
export const InboxOption = Schema.Literal("approve", "reject", "session", "always")
export type InboxOption = typeof InboxOption.Type

/**
 * Something that needs a user's input: a session whose turn waits on a permission answer, or a
 * `human` task waiting for approval. `id` is the permission request's id or the task's id.
 */
export class InboxItem extends Schema.Class<InboxItem>("InboxItem")({
  id: Schema.String,
  kind: InboxItemKind,
  projectId: ProjectId,
  sessionId: Schema.optional(SessionId),
  taskId: Schema.optional(TaskId),
  /** One line saying what is asked. */
  title: Schema.String,
  /** What is asked in more detail (a tool call's arguments, a task's description). */
  detail: Schema.String,
  createdAt: Schema.Number,
  /** Who (or which key) made the request or enqueued the task, when known. */
  requestedBy: Schema.optional(Schema.String),
  options: Schema.Array(InboxOption)
}) {}

export const InboxAnswerChoice = Schema.Literal("approve", "reject")
export type InboxAnswerChoice = typeof InboxAnswerChoice.Type

export class InboxAnswer extends Schema.Class<InboxAnswer>("InboxAnswer")({
  /** A permission request id (`perm_…`) or a task id (`tsk_…`). */
  id: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200)),
  answer: InboxAnswerChoice,
  /**
   * For an approved permission request: `once` (default) allows this call, `session` the same tool
   * and subject for the rest of the session, `always` stores a project rule. Tasks take `once` only.
   */
  scope: Schema.optional(Schema.Literal("once", "session", "always")),
  /** Shown with the answer: for a rejected permission request the model is told it; a task keeps it. */
  note: Schema.optional(Schema.String.pipe(Schema.maxLength(4096))),
  /** The item's project, when the caller knows it (saves looking through every project). */
  projectId: Schema.optional(ProjectId)
}) {}

/** How an item left the inbox: answered, expired (a permission request's turn ended), or cancelled (a task). */
export const InboxOutcome = Schema.Literal("approved", "rejected", "expired", "cancelled")
export type InboxOutcome = typeof InboxOutcome.Type

/** Something started waiting for input. */
export const InboxItemAdded = Schema.TaggedStruct("InboxItemAdded", { item: InboxItem })

/** An item no longer waits: it was answered, expired or cancelled. */
export const InboxItemResolved = Schema.TaggedStruct("InboxItemResolved", {
  id: Schema.String,
  kind: InboxItemKind,
  outcome: InboxOutcome
})

export const InboxEvent = Schema.Union(InboxItemAdded, InboxItemResolved)
export type InboxEvent = typeof InboxEvent.Type
