import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Duration, Effect, Either, Option, Schedule, Schema, Stream } from "effect"
import { AccessControl } from "../../auth/AccessControl.js"
import { type Revocation, Revocations } from "../../auth/Revocations.js"
import { ServerConfig } from "../../config/ServerConfig.js"
import { requirementOf } from "../../domain/Access.js"
import type { Principal } from "../../domain/Auth.js"
import { InvalidInput, Unauthorized } from "../../domain/Errors.js"
import { DomainEvent, SubscriptionItem } from "../../domain/Event.js"
import { Api } from "../../domain/http/Api.js"
import { EventsApi } from "../../domain/http/EventsApi.js"
import type { ProjectId } from "../../domain/Ids.js"
import { EventBus } from "../../events/EventBus.js"
import { Presence } from "../../presence/Presence.js"
import { makeHttpAccess } from "./HttpAccess.js"

const encodeEvent = Schema.encodeSync(DomainEvent)
const encodeItem = Schema.encodeSync(SubscriptionItem)

// `JSON.stringify` without indentation never writes a line break, so each `data:` is one line.
const control = (item: SubscriptionItem) => `event: ${item._tag}\ndata: ${JSON.stringify(encodeItem(item))}\n\n`

/**
 * One subscription item as a Server-Sent Events frame. A project event carries its `seq` as the
 * frame's `id` (what `EventSource` sends back as `Last-Event-ID` when it reconnects) and its own
 * `_tag` as the event name. The stream's other items are events named by their `_tag` with the
 * item as data; `Ready` and `Lagged` carry the seq a reconnect resumes after as their `id` (the
 * project's last event when the stream went live; the last event sent before the stream fell
 * behind and ended), so a reconnect loses nothing. The others (`Reset`, `Presence`) have no `id`.
 */
export const sseFrame = (item: SubscriptionItem): string => {
  switch (item._tag) {
    case "Event":
      return `id: ${item.event.seq}\nevent: ${item.event.event._tag}\ndata: ${JSON.stringify(encodeEvent(item.event))}\n\n`
    case "Ready":
      return `id: ${item.seq}\n${control(item)}`
    case "Lagged":
      return `id: ${item.lastSeq}\n${control(item)}`
    default:
      return control(item)
  }
}

/** The frame that ends a stream whose caller lost access while it was open. */
const closedFrame = (error: { readonly _tag: string }) => `event: Closed\ndata: ${JSON.stringify(error)}\n\n`

export const heartbeatFrame = ": ping\n\n"

const resumePoint = (name: string, value: string | undefined): Either.Either<Option.Option<number>, InvalidInput> => {
  if (value === undefined || value.trim() === "") return Either.right(Option.none())
  const text = value.trim()
  const seq = Number(text)
  return /^\d+$/.test(text) && Number.isSafeInteger(seq)
    ? Either.right(Option.some(seq))
    : Either.left(
        new InvalidInput({ reason: `${name} must be the seq of an event (a non-negative integer), got ${JSON.stringify(value.slice(0, 64))}` })
      )
}

/**
 * Where to resume: after the seq in `Last-Event-ID` (sent by `EventSource` when it reconnects),
 * else after `?since=`, else from now. A value that is not a seq is refused, whichever it is.
 */
export const resumeFrom = (header: string | undefined, since: string | undefined): Either.Either<Option.Option<number>, InvalidInput> =>
  Either.flatMap(resumePoint("Last-Event-ID", header), (fromHeader) =>
    Either.map(resumePoint("since", since), (fromQuery) => Option.orElse(fromHeader, () => fromQuery))
  )

/** Whether a revocation may concern this caller (the same test as the RPC middleware's). */
const concerns = (caller: Principal) => (r: Revocation) => (r._tag === "Key" ? r.keyId === caller.keyId : r.userId === caller.userId)

const requirement = Option.getOrThrowWith(
  Option.flatMap(Option.fromNullable(EventsApi.endpoints["stream"]), (e) => requirementOf(e.annotations as Parameters<typeof requirementOf>[0])),
  () => new Error("events.stream declares no access requirement")
)

/**
 * `GET /api/projects/{projectId}/events`: the `events.subscribe` RPC as Server-Sent Events. The
 * caller is checked like every REST route (unknown or invisible project: 404); the stream then
 * runs until the client goes away, the project is deleted (after its `ProjectDeleted` event), or
 * the caller loses access (a `Closed` event naming the refusal, as the RPC stream fails with it).
 * Comment lines every `sseHeartbeatSeconds` keep proxies from closing an idle stream.
 */
export const EventsSse = HttpApiBuilder.group(Api, "events", (handlers) =>
  Effect.gen(function* () {
    const bus = yield* EventBus
    const presence = yield* Presence
    const control = yield* AccessControl
    const revocations = yield* Revocations
    const config = yield* ServerConfig
    const access = yield* makeHttpAccess
    const heartbeat = Duration.millis(Math.max(10, config.sseHeartbeatSeconds * 1000))

    const stream = (caller: Principal, projectId: ProjectId, since: Option.Option<number>) =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const input = { projectId }
          const lost = yield* revocations.watch(concerns(caller), (r) =>
            r._tag === "Member" ? control.check(caller, requirement, input) : Effect.fail(new Unauthorized({ reason: "credentials revoked" }))
          )
          // The items of `events.subscribe`: the log after `since`, `Ready`, then live events and
          // presence changes; a deleted project's stream ends after its ProjectDeleted event.
          const items = presence.withPresence(
            projectId,
            bus.stream(projectId, since).pipe(Stream.takeUntil((item) => item._tag === "Event" && item.event.event._tag === "ProjectDeleted"))
          )
          const frames = items.pipe(
            Stream.map(sseFrame),
            Stream.interruptWhen(lost),
            Stream.catchAll((error) => Stream.succeed(closedFrame(error)))
          )
          const pings = Stream.fromSchedule(Schedule.spaced(heartbeat)).pipe(Stream.as(heartbeatFrame))
          return Stream.merge(frames, pings, { haltStrategy: "left" })
        })
      ).pipe(Stream.encodeText)

    return handlers.handle("stream", ({ headers, path, urlParams }) =>
      access("events", "stream")({ ...urlParams, ...path }, (caller) =>
        Effect.map(resumeFrom(headers["last-event-id"], urlParams.since), (since) =>
          HttpServerResponse.stream(stream(caller, path.projectId, since), {
            contentType: "text/event-stream; charset=utf-8",
            headers: { "cache-control": "no-cache, no-transform", "x-accel-buffering": "no", "x-content-type-options": "nosniff" }
          })
        )
      )
    )
  })
)
