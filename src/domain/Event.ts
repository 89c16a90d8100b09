import { Schema } from "effect"
import { FileEvent } from "./FileEvents.js"
import { InboxEvent } from "./Inbox.js"
import { ProjectId } from "./Ids.js"
import { ProjectEvent } from "./ProjectEvents.js"
import { PermissionEvent } from "./PermissionEvents.js"
import { PresenceItem } from "./Presence.js"
import { SessionEvent } from "./SessionEvents.js"
import { TaskEvent } from "./TaskEvents.js"

/** Every state change a client can watch. Each area contributes its own union. */
export const EventBody = Schema.Union(ProjectEvent, SessionEvent, PermissionEvent, TaskEvent, FileEvent, InboxEvent)
export type EventBody = typeof EventBody.Type

/**
 * The envelope published on the bus. `seq` is the event's number in its project's event log: it
 * increases by one for every event of that project, survives restarts, and is what a subscriber
 * passes back as `since` to resume.
 */
export class DomainEvent extends Schema.Class<DomainEvent>("DomainEvent")({
  seq: Schema.Number,
  projectId: ProjectId,
  at: Schema.Number,
  event: EventBody
}) {}

/**
 * The subscription is live from here: every event after `seq` (the last event of the project when
 * the subscription started) follows. With `since`, it comes after the replayed events.
 */
export const SubscriptionReady = Schema.TaggedStruct("Ready", { seq: Schema.Number })
/**
 * The subscriber fell behind its bounded buffer and `missed` events were dropped for it. `lastSeq`
 * is the last event it was sent; the subscription ends here, and subscribing again with
 * `since: lastSeq` resumes without a loss.
 */
export const SubscriptionLagged = Schema.TaggedStruct("Lagged", { missed: Schema.Number, lastSeq: Schema.Number })
/**
 * The requested `since` is older than the project's retained log (the events right after it were
 * pruned): the client should fetch the state it shows anew. Events from `oldestSeq` on follow.
 */
export const SubscriptionReset = Schema.TaggedStruct("Reset", { oldestSeq: Schema.Number })
export const EventEnvelope = Schema.TaggedStruct("Event", { event: DomainEvent })

/** Presence changes (who is connected, typing) ride along on the stream: not logged, no `seq` (see Presence.ts). */
export const SubscriptionItem = Schema.Union(SubscriptionReady, SubscriptionLagged, SubscriptionReset, EventEnvelope, PresenceItem)
export type SubscriptionItem = typeof SubscriptionItem.Type
