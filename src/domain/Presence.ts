import { Schema } from "effect"
import { ProjectId, SessionId, UserId } from "./Ids.js"

/** A connection is typing in `sessionId` until `until` (ms since the epoch), unless it types again. */
export const PresenceTyping = Schema.Struct({ sessionId: SessionId, until: Schema.Number })
export type PresenceTyping = typeof PresenceTyping.Type

/**
 * One connection present in a project: who (the caller's user and the client program it named),
 * where (the session it is looking at, if any), since when, and whether it is typing. `connection`
 * tells apart two connections of the same user; it means nothing outside this hub process.
 */
export const PresenceEntry = Schema.Struct({
  connection: Schema.Number,
  userId: UserId,
  userName: Schema.String,
  client: Schema.NullOr(Schema.String),
  sessionId: Schema.NullOr(SessionId),
  /** When the connection joined the project (ms since the epoch). */
  since: Schema.Number,
  /** Its last join, heartbeat or typing call; it is dropped `presenceTimeoutSeconds` after this. */
  lastSeen: Schema.Number,
  typing: Schema.NullOr(PresenceTyping)
})
export type PresenceEntry = typeof PresenceEntry.Type

/**
 * What happened to an entry: `Joined`; `Updated` (a join again with another session or client
 * name); `Typing` (started, or still typing: at most one per `typingIntervalMs`);
 * `TypingStopped` (the typing state expired); `Left`.
 */
export const PresenceChange = Schema.Literal("Joined", "Updated", "Typing", "TypingStopped", "Left")
export type PresenceChange = typeof PresenceChange.Type

/** Why an entry left: `presence.leave`, its connection closed, or it stopped heartbeating. */
export const PresenceLeft = Schema.Literal("leave", "closed", "timeout")
export type PresenceLeft = typeof PresenceLeft.Type

/**
 * A presence change, as an item of `events.subscribe`. Presence is live state: these items are not
 * stored, not replayed and carry no `seq`; `presence.list` gives the current state.
 */
export const PresenceItem = Schema.TaggedStruct("Presence", {
  projectId: ProjectId,
  change: PresenceChange,
  entry: PresenceEntry,
  at: Schema.Number,
  reason: Schema.optional(PresenceLeft)
})
export type PresenceItem = typeof PresenceItem.Type

export const JoinPresence = Schema.Struct({
  projectId: ProjectId,
  sessionId: Schema.optional(SessionId),
  /** The client program's name as other members see it (at most 64 characters). */
  client: Schema.optional(Schema.String)
})
export type JoinPresence = typeof JoinPresence.Type

/** What a typing call did: whether it was broadcast (or coalesced into an earlier one) and until when it lasts. */
export const TypingResult = Schema.Struct({ broadcast: Schema.Boolean, until: Schema.Number })
export type TypingResult = typeof TypingResult.Type

/** The connection is present in too many projects already (`presenceMaxPerConnection`). */
export class PresenceLimit extends Schema.TaggedError<PresenceLimit>()("PresenceLimit", {
  reason: Schema.String,
  limit: Schema.Int
}) {}

/** The connection has not joined the project (or its entry expired): call `presence.join` (again). */
export class NotPresent extends Schema.TaggedError<NotPresent>()("NotPresent", {
  projectId: ProjectId,
  reason: Schema.String
}) {}
