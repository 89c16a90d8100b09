import { Deferred, type Duration, Effect, Stream, SubscriptionRef } from "effect"
import type { HubRpcClient } from "../../src/client/HubClient.js"
import type { DomainEvent, SubscriptionItem } from "../../src/domain/Event.js"
import type { ProjectId } from "../../src/domain/Ids.js"
import { untilRef } from "../support/Until.js"

/** Subscription items other than presence changes (not logged, no seq). */
export type Item = Exclude<SubscriptionItem, { readonly _tag: "Presence" }>

/**
 * Subscribes a client to a project (resuming after `since` when given), in the caller's scope, and
 * records every item; `until` resolves once the recorded items satisfy a condition.
 */
export const record = (client: HubRpcClient, projectId: ProjectId, since?: number) =>
  Effect.gen(function* () {
    const items = yield* SubscriptionRef.make<ReadonlyArray<Item>>([])
    const ended = yield* Deferred.make<void>()
    yield* client.events.subscribe({ projectId, ...(since === undefined ? {} : { since }) }).pipe(
      Stream.runForEach((item) => (item._tag === "Presence" ? Effect.void : SubscriptionRef.update(items, (l) => [...l, item]))),
      Effect.ensuring(Deferred.succeed(ended, undefined)),
      Effect.forkScoped
    )
    const until = <A>(f: (items: ReadonlyArray<Item>) => A | undefined, timeout: Duration.DurationInput = "30 seconds") =>
      untilRef(items, "subscription items", f, timeout)
    const ready = until((l) => l.find((i) => i._tag === "Ready"))
    /** Resolves once an event with `seq` (or later) was recorded. */
    const reached = (seq: number) => until((l) => (l.some((i) => i._tag === "Event" && i.event.seq >= seq) ? l : undefined))
    return { items: SubscriptionRef.get(items), until, ready, reached, ended: Deferred.await(ended) }
  })

export const eventsOf = (items: ReadonlyArray<Item>): ReadonlyArray<DomainEvent> => items.flatMap((i) => (i._tag === "Event" ? [i.event] : []))

export const seqsOf = (items: ReadonlyArray<Item>) => eventsOf(items).map((e) => e.seq)

export const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)

/** What a client sees of an event, for comparing a replay with the live original. */
export const summary = (e: DomainEvent) => ({ seq: e.seq, tag: e.event._tag, at: e.at, body: JSON.stringify(e.event) })
