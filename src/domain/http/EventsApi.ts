import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { Access, Requires } from "../Access.js"
import { ProjectId } from "../Ids.js"
import { Authentication } from "./Authentication.js"
import { Forbidden, InvalidInput, NotFound } from "./HttpErrors.js"

/** The body of the event stream: `text/event-stream` frames, written as events happen. */
export const EventStreamBody = HttpApiSchema.Text({ contentType: "text/event-stream" }).annotations({
  description:
    "Server-Sent Events, the items of the `events.subscribe` RPC. A project event is `id: <seq>`, `event: <the event's _tag>`, " +
    "`data: <the event envelope as JSON>`. The other items are events named by their `_tag` with the item as JSON: `Ready` " +
    "(live from here; its `id` is the project's last seq), `Lagged` (the client fell behind; its `id` is the last seq sent and " +
    "the stream ends, so that the client reconnects and resumes), `Reset` (the resume point was pruned: fetch the state anew), " +
    "`Presence`, and `Closed` (the caller lost access; the stream ends). Comment lines (`: ping`) keep an idle stream open."
})

/** Resume points, both the last `seq` the client has seen; the header (sent by `EventSource` on reconnect) wins. */
const Resume = Schema.Struct({
  since: Schema.optional(Schema.String.annotations({ description: "Replay the events after this seq (a non-negative integer), then go live" }))
})
const ResumeHeader = Schema.Struct({
  "last-event-id": Schema.optional(Schema.String.annotations({ description: "As `since`; takes precedence over it" }))
})

/**
 * A read-only Server-Sent Events feed of one project's events, for clients that cannot open a
 * WebSocket: the same items as the `events.subscribe` RPC, with the same access (viewers and up).
 * Changes stay on the other REST routes.
 */
export class EventsApi extends HttpApiGroup.make("events")
  .add(
    HttpApiEndpoint.get("stream", "/api/projects/:projectId/events")
      .setPath(Schema.Struct({ projectId: ProjectId }))
      .setUrlParams(Resume)
      .setHeaders(ResumeHeader)
      .addSuccess(EventStreamBody)
      .addError(NotFound)
      .addError(Forbidden)
      .addError(InvalidInput)
      .annotate(OpenApi.Summary, "Stream a project's events (Server-Sent Events)")
      .annotate(Requires, Access.project("viewer", "read"))
  )
  // Every operation here can be refused by the authorization path (see domain/Access.ts).
  .addError(Forbidden)
  .addError(NotFound)
  .middleware(Authentication) {}
