import { Schema } from "effect"
import { FileEvent } from "./FileEvents.js"
import { ProjectId } from "./Ids.js"
import { ProjectEvent } from "./ProjectEvents.js"
import { PermissionEvent } from "./PermissionEvents.js"
import { SessionEvent } from "./SessionEvents.js"
import { TaskEvent } from "./TaskEvents.js"

/** Every state change a client can watch. Each area contributes its own union. */
export const EventBody = Schema.Union(ProjectEvent, SessionEvent, PermissionEvent, TaskEvent, FileEvent)
export type EventBody = typeof EventBody.Type

/**
 * The envelope published on the bus. `seq` increases by one for every event the hub publishes
 * (across projects), so a subscriber can tell events apart and order them.
 */
export class DomainEvent extends Schema.Class<DomainEvent>("DomainEvent")({
  seq: Schema.Number,
  projectId: ProjectId,
  at: Schema.Number,
  event: EventBody
}) {}

/** First element of every subscription: the subscription is live; anything published later arrives. */
export const SubscriptionReady = Schema.TaggedStruct("Ready", { seq: Schema.Number })
/** The subscriber fell behind and `missed` events were dropped for it (the bus keeps a bounded buffer). */
export const SubscriptionLagged = Schema.TaggedStruct("Lagged", { missed: Schema.Number })
export const EventEnvelope = Schema.TaggedStruct("Event", { event: DomainEvent })

export const SubscriptionItem = Schema.Union(SubscriptionReady, SubscriptionLagged, EventEnvelope)
export type SubscriptionItem = typeof SubscriptionItem.Type
