import type { FileAuthor } from "../domain/File.js"
import { type ToolContext, ToolFailure } from "../tools/Tool.js"

/** The author of a tool call's writes: the turn (session and assistant message) and the model's call id. */
export const sessionAuthor = (ctx: ToolContext): FileAuthor => ({
  kind: "session",
  sessionId: ctx.sessionId,
  messageId: ctx.messageId,
  toolCallId: ctx.toolCallId ?? null
})

/** A FileService failure as the model reads it: the error's name first (e.g. `FileLocked: … session …`). */
export const fileFailure = (e: { readonly _tag: string; readonly message: string } | { readonly _tag: string; readonly reason: string }) =>
  new ToolFailure({ message: "reason" in e ? `${e._tag}: ${e.reason}` : e.message.startsWith(e._tag) ? e.message : `${e._tag}: ${e.message}` })
