import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema } from "@effect/platform"
import { Schema, Struct } from "effect"
import { Requires } from "../Access.js"
import { ProjectId } from "../Ids.js"
import { InboxAnswer, InboxItem } from "../Inbox.js"
import { PermissionExpired as PermissionExpiredError } from "../Permission.js"
import { InboxRequirements } from "../rpc/InboxRpcs.js"
import { Authentication } from "./Authentication.js"
import { Conflict, Forbidden, InvalidInput, NotFound } from "./HttpErrors.js"

/** The permission request can no longer be answered (its turn ended, or it timed out). */
const PermissionExpired = PermissionExpiredError.annotations(HttpApiSchema.annotations({ status: 410 }))

/** `POST /api/inbox/{id}/answer`: the `inbox.answer` payload without the id (it is in the path). */
export const InboxAnswerBody = Schema.Struct(Struct.omit(InboxAnswer.fields, "id"))

/**
 * The inbox, as the `inbox.*` RPCs: what waits for the caller's input (permission requests of
 * running turns, `human` tasks) and answering one, with the checks of the operation it routes to.
 */
export class InboxApi extends HttpApiGroup.make("inbox")
  .add(
    HttpApiEndpoint.get("list", "/api/inbox")
      .setUrlParams(Schema.Struct({ projectId: Schema.optional(ProjectId) }))
      .addSuccess(Schema.Array(InboxItem))
      .annotate(Requires, InboxRequirements.list)
  )
  .add(
    HttpApiEndpoint.post("answer", "/api/inbox/:id/answer")
      .setPath(Schema.Struct({ id: InboxAnswer.fields.id }))
      .setPayload(InboxAnswerBody)
      .addSuccess(InboxItem)
      .addError(InvalidInput)
      .addError(Conflict)
      .addError(PermissionExpired)
      .annotate(Requires, InboxRequirements.answer)
  )
  // Every operation here can be refused by the authorization path (see domain/Access.ts).
  .addError(Forbidden)
  .addError(NotFound)
  .middleware(Authentication) {}
