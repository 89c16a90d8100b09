import { Rpc, RpcGroup } from "@effect/rpc"
import { Schema } from "effect"
import { Access, Requires } from "../Access.js"
import { Conflict, Forbidden, InvalidInput, NotFound } from "../Errors.js"
import { ProjectId } from "../Ids.js"
import { InboxAnswer, InboxItem } from "../Inbox.js"
import { PermissionExpired } from "../Permission.js"
import { AuthMiddleware } from "./Middleware.js"

/** What each inbox operation needs; the `inbox.*` RPCs and the `/api/inbox` endpoints declare the same. */
export const InboxRequirements = {
  /** Any project the caller can see (all of them without `projectId`); items are listed only to those who may answer them. */
  list: Access.project("viewer", "read", { optional: true }),
  /**
   * A key that may change things; the item's own operation (`permission.reply` or `task.approve`)
   * is then checked against the caller, as if they had called it.
   */
  answer: Access.authenticated("write")
} as const

export const InboxErrors = Schema.Union(NotFound, Forbidden, InvalidInput, Conflict, PermissionExpired)

/**
 * One inbox for everything waiting on a user: sessions whose turn waits on a permission answer and
 * `human` tasks waiting for approval. `answer` fails as the operation it routes to does: `NotFound`
 * for an unknown item (or one in a project the caller cannot see), `Forbidden` without the role to
 * answer it, `PermissionExpired`/`Conflict` for a permission request no longer pending, and
 * `InvalidInput` for a task no longer waiting.
 */
export class InboxRpcs extends RpcGroup.make(
  Rpc.make("list", {
    payload: { projectId: Schema.optional(ProjectId) },
    success: Schema.Array(InboxItem),
    error: Schema.Union(NotFound, Forbidden)
  }).annotate(Requires, InboxRequirements.list),
  Rpc.make("answer", { payload: InboxAnswer, success: InboxItem, error: InboxErrors }).annotate(Requires, InboxRequirements.answer)
)
  .prefix("inbox.")
  .middleware(AuthMiddleware) {}
