import { Schema } from "effect"
import { PermissionRequestId, SessionId } from "./Ids.js"
import { PermissionReply, PermissionRequest, PermissionRequestStatus } from "./Permission.js"

/** A tool call waits for someone to answer `permission.reply`. */
export const PermissionAsked = Schema.TaggedStruct("PermissionAsked", { request: PermissionRequest })

/**
 * A pending request was answered, or expired (`status: "expired"`, `reply` null or `reject`): it
 * timed out, or the turn that asked ended. Either way clients drop their prompt.
 */
export const PermissionReplied = Schema.TaggedStruct("PermissionReplied", {
  requestId: PermissionRequestId,
  sessionId: SessionId,
  status: PermissionRequestStatus,
  reply: Schema.NullOr(PermissionReply),
  repliedBy: Schema.NullOr(Schema.String)
})

export const PermissionEvent = Schema.Union(PermissionAsked, PermissionReplied)
export type PermissionEvent = typeof PermissionEvent.Type
