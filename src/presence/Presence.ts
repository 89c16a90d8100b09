import { Chunk, Clock, Effect, Queue, Schedule, Stream } from "effect"
import { ServerConfig } from "../config/ServerConfig.js"
import type { Principal } from "../domain/Auth.js"
import { InvalidInput } from "../domain/Errors.js"
import type { SubscriptionItem } from "../domain/Event.js"
import type { ProjectId, SessionId } from "../domain/Ids.js"
import {
  type JoinPresence,
  NotPresent,
  type PresenceChange,
  type PresenceEntry,
  type PresenceItem,
  type PresenceLeft,
  PresenceLimit,
  type TypingResult
} from "../domain/Presence.js"

/** Longest client name a connection may show. */
const MAX_CLIENT_CHARS = 64
/** Presence changes held for one subscriber that is not reading; beyond it the oldest are dropped. */
const SUBSCRIBER_BACKLOG = 256

interface Entry {
  readonly connection: number
  readonly projectId: ProjectId
  readonly userId: Principal["userId"]
  readonly userName: string
  client: string | null
  sessionId: SessionId | null
  readonly since: number
  lastSeen: number
  typing: { sessionId: SessionId; until: number } | null
  /** When a `Typing` change was last broadcast (for the session of `typing`). */
  typingSentAt: number
}

const view = (e: Entry): PresenceEntry => ({
  connection: e.connection,
  userId: e.userId,
  userName: e.userName,
  client: e.client,
  sessionId: e.sessionId,
  since: e.since,
  lastSeen: e.lastSeen,
  typing: e.typing === null ? null : { sessionId: e.typing.sessionId, until: e.typing.until }
})

/**
 * Who is connected to each project right now. Each RPC connection (its `clientId`) joins projects,
 * optionally naming the session it looks at; the entry lasts until the connection leaves, closes,
 * or stops heartbeating for `presenceTimeoutSeconds`. Typing is a short-lived mark on an entry that
 * expires by itself after `typingSeconds`. Changes go to the project's subscribers as `Presence`
 * items; nothing here is stored, so a restart forgets everyone (clients join again on reconnect).
 *
 * Bounds: one connection is present in at most `presenceMaxPerConnection` projects, `Typing` is
 * broadcast at most once per `typingIntervalMs` per connection and project while it lasts, and each subscriber
 * holds at most a fixed backlog of changes (the oldest are dropped; `presence.list` is the truth).
 */
export class Presence extends Effect.Service<Presence>()("kiris/Presence", {
  scoped: Effect.gen(function* () {
    const config = yield* ServerConfig
    const timeoutMs = Math.max(1, config.presenceTimeoutSeconds * 1000)
    const typingMs = Math.max(1, config.typingSeconds * 1000)
    const maxPerConnection = Math.max(1, config.presenceMaxPerConnection)
    const byConnection = new Map<number, Map<ProjectId, Entry>>()
    const byProject = new Map<ProjectId, Set<Entry>>()
    const subscribers = new Map<ProjectId, Set<Queue.Queue<PresenceItem>>>()

    const publish = (entry: Entry, change: PresenceChange, at: number, reason?: PresenceLeft) => {
      const subs = subscribers.get(entry.projectId)
      if (subs === undefined || subs.size === 0) return
      const item: PresenceItem = {
        _tag: "Presence",
        projectId: entry.projectId,
        change,
        entry: view(entry),
        at,
        ...(reason === undefined ? {} : { reason })
      }
      for (const queue of subs) Queue.unsafeOffer(queue, item)
    }

    const remove = (entry: Entry, at: number, reason: PresenceLeft) => {
      const mine = byConnection.get(entry.connection)
      mine?.delete(entry.projectId)
      if (mine?.size === 0) byConnection.delete(entry.connection)
      const inProject = byProject.get(entry.projectId)
      inProject?.delete(entry)
      if (inProject?.size === 0) byProject.delete(entry.projectId)
      entry.typing = null
      publish(entry, "Left", at, reason)
    }

    const find = (connection: number, projectId: ProjectId) => byConnection.get(connection)?.get(projectId)
    const present = (connection: number, projectId: ProjectId) =>
      Effect.suspend(() => {
        const entry = find(connection, projectId)
        return entry === undefined
          ? Effect.fail(new NotPresent({ projectId, reason: `this connection is not present in project ${projectId}: call presence.join first` }))
          : Effect.succeed(entry)
      })

    /** Drops entries that stopped heartbeating and typing marks that ran out; runs a few times per bound. */
    const sweep = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.sync(() => {
        for (const entries of [...byProject.values()]) {
          for (const entry of [...entries]) {
            if (now - entry.lastSeen >= timeoutMs) remove(entry, now, "timeout")
            else if (entry.typing !== null && entry.typing.until <= now) {
              entry.typing = null
              publish(entry, "TypingStopped", now)
            }
          }
        }
      })
    )
    const tickMs = Math.min(1000, Math.max(20, Math.floor(Math.min(timeoutMs, typingMs) / 5)))
    yield* sweep.pipe(Effect.repeat(Schedule.spaced(tickMs)), Effect.interruptible, Effect.forkScoped)

    /**
     * Makes the connection present in the project (or refreshes its entry: a join again is also a
     * heartbeat), looking at `sessionId` (checked by the caller) or at no session.
     */
    const join = (connection: number, caller: Principal, input: JoinPresence) =>
      Effect.gen(function* () {
        const client = input.client?.trim() ?? ""
        if (client.length > MAX_CLIENT_CHARS) {
          return yield* new InvalidInput({ reason: `client name too long: ${client.length} characters, at most ${MAX_CLIENT_CHARS}` })
        }
        const now = yield* Clock.currentTimeMillis
        const existing = find(connection, input.projectId)
        const sessionId = input.sessionId ?? null
        const clientName = client === "" ? null : client
        if (existing !== undefined) {
          existing.lastSeen = now
          if (existing.sessionId !== sessionId || existing.client !== clientName) {
            existing.sessionId = sessionId
            existing.client = clientName
            publish(existing, "Updated", now)
          }
          return view(existing)
        }
        const mine = byConnection.get(connection) ?? new Map<ProjectId, Entry>()
        if (mine.size >= maxPerConnection) {
          return yield* new PresenceLimit({
            reason: `this connection is present in ${mine.size} projects already (limit ${maxPerConnection}): leave one first`,
            limit: maxPerConnection
          })
        }
        const entry: Entry = {
          connection,
          projectId: input.projectId,
          userId: caller.userId,
          userName: caller.name,
          client: clientName,
          sessionId,
          since: now,
          lastSeen: now,
          typing: null,
          typingSentAt: 0
        }
        mine.set(input.projectId, entry)
        byConnection.set(connection, mine)
        const inProject = byProject.get(input.projectId) ?? new Set<Entry>()
        inProject.add(entry)
        byProject.set(input.projectId, inProject)
        publish(entry, "Joined", now)
        return view(entry)
      })

    /** Leaves the project; whether the connection was present in it. */
    const leave = (connection: number, projectId: ProjectId) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.sync(() => {
          const entry = find(connection, projectId)
          if (entry !== undefined) remove(entry, now, "leave")
          return entry !== undefined
        })
      )

    /** Keeps the connection's entry in the project alive for another `presenceTimeoutSeconds`. */
    const heartbeat = (connection: number, projectId: ProjectId) =>
      Effect.flatMap(present(connection, projectId), (entry) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          entry.lastSeen = now
          return view(entry)
        })
      )

    /**
     * Marks the connection as typing in `sessionId` for `typingSeconds`. Starting to type is always
     * broadcast; while the mark lasts, a call within `typingIntervalMs` of the last broadcast only
     * extends it (or moves it to another session) without a broadcast, so that a client calling on
     * every keystroke costs its observers at most one item per interval.
     * `check` (that the session exists) runs unless the entry already names that session.
     */
    const typing = <E, R>(connection: number, projectId: ProjectId, sessionId: SessionId, check: Effect.Effect<unknown, E, R>) =>
      Effect.gen(function* () {
        const known = yield* present(connection, projectId)
        if (known.sessionId !== sessionId && known.typing?.sessionId !== sessionId) yield* check
        // the entry may have left while the session was checked
        const entry = yield* present(connection, projectId)
        const now = yield* Clock.currentTimeMillis
        entry.lastSeen = now
        const until = now + typingMs
        const continuing = entry.typing !== null
        entry.typing = { sessionId, until }
        if (continuing && now - entry.typingSentAt < config.typingIntervalMs) return { broadcast: false, until } satisfies TypingResult
        entry.typingSentAt = now
        publish(entry, "Typing", now)
        return { broadcast: true, until } satisfies TypingResult
      })

    /** Everyone present in the project, oldest first. */
    const list = (projectId: ProjectId) =>
      Effect.sync(() => [...(byProject.get(projectId) ?? [])].sort((a, b) => a.since - b.since || a.connection - b.connection).map(view))

    /** The connection closed: it leaves every project at once. */
    const disconnected = (connection: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.sync(() => {
          const mine = byConnection.get(connection)
          if (mine !== undefined) for (const entry of [...mine.values()]) remove(entry, now, "closed")
        })
      )

    /** Subscribes now, in the caller's scope, to the project's presence changes. */
    const changes = (projectId: ProjectId) =>
      Effect.gen(function* () {
        const queue = yield* Effect.acquireRelease(
          Effect.tap(Queue.sliding<PresenceItem>(SUBSCRIBER_BACKLOG), (queue) =>
            Effect.sync(() => {
              const subs = subscribers.get(projectId) ?? new Set()
              subs.add(queue)
              subscribers.set(projectId, subs)
            })
          ),
          (queue) =>
            Effect.zipRight(
              Effect.sync(() => {
                const subs = subscribers.get(projectId)
                subs?.delete(queue)
                if (subs?.size === 0) subscribers.delete(projectId)
              }),
              Queue.shutdown(queue)
            )
        )
        return Stream.fromQueue(queue)
      })

    /**
     * A project's event stream with its presence changes merged in. Presence items start after the
     * event stream's `Ready` (those that happen before it are held, up to the backlog bound), so
     * `Ready` stays the first item; the merged stream ends when the event stream does.
     */
    const withPresence = <E, R>(projectId: ProjectId, events: Stream.Stream<SubscriptionItem, E, R>): Stream.Stream<SubscriptionItem, E, R> =>
      Stream.unwrapScoped(
        Effect.map(changes(projectId), (presence) => {
          let live = false
          const held: Array<SubscriptionItem> = []
          return Stream.merge(events, presence, { haltStrategy: "left" }).pipe(
            Stream.mapChunks((chunk) => {
              const out: Array<SubscriptionItem> = []
              for (const item of chunk) {
                if (live) out.push(item)
                else if (item._tag === "Presence") {
                  held.push(item)
                  if (held.length > SUBSCRIBER_BACKLOG) held.shift()
                } else if (item._tag === "Ready") {
                  live = true
                  out.push(item, ...held.splice(0))
                } else out.push(item)
              }
              return Chunk.unsafeFromArray(out)
            })
          )
        })
      )

    return { join, leave, heartbeat, typing, list, disconnected, changes, withPresence } as const
  })
}) {}
