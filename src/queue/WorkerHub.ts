import { Effect, Queue, Stream } from "effect"
import { newId } from "../auth/Crypto.js"
import { ServerConfig } from "../config/ServerConfig.js"
import type { TaskId, WorkerId } from "../domain/Ids.js"
import type { WorkerPush } from "../domain/rpc/WorkerRpcs.js"
import { type TaskKind, WorkerInfo } from "../domain/Task.js"

/** A disconnected worker holding no lease is forgotten after this long. */
const FORGET_AFTER_MS = 15 * 60_000

interface Entry {
  readonly id: WorkerId
  name: string
  kinds: ReadonlyArray<TaskKind>
  capacity: number
  connectedAt: number
  lastSeenAt: number
  /** The live connection's push queue; null while disconnected. */
  mailbox: Queue.Queue<WorkerPush> | null
  generation: number
  /** Kinds of a WorkAvailable still unread in the mailbox (then no other is added; its kinds grow). */
  pendingKinds: Set<TaskKind> | null
}

export interface ConnectInput {
  readonly workerId?: WorkerId | undefined
  readonly name: string
  readonly kinds: ReadonlyArray<TaskKind>
  readonly capacity: number
}

/**
 * The registry of swarm workers and their push channels (`worker.connect`). It owns who is
 * connected and what they run, and pushes "work available" and "cancel task"; it holds no tasks.
 * A dropped connection only marks the worker disconnected (its leases stay until they expire); a
 * reconnect with the same id reclaims the registration.
 */
export class WorkerHub extends Effect.Service<WorkerHub>()("kiris/WorkerHub", {
  effect: Effect.gen(function* () {
    const config = yield* ServerConfig
    const workers = new Map<string, Entry>()
    let generations = 0

    const push = (entry: Entry, message: WorkerPush) => {
      if (entry.mailbox !== null) Queue.unsafeOffer(entry.mailbox, message)
    }

    /** `Registered` first, then pushes, until the caller's connection (the stream) ends. */
    const connect = (input: ConnectInput): Stream.Stream<WorkerPush> =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const id = input.workerId ?? (newId("wrk") as WorkerId)
          const mailbox = yield* Queue.unbounded<WorkerPush>()
          const generation = ++generations
          const now = Date.now()
          const previous = workers.get(id)
          if (previous?.mailbox) yield* Queue.shutdown(previous.mailbox)
          const entry: Entry = {
            id,
            name: input.name,
            kinds: input.kinds,
            capacity: input.capacity,
            connectedAt: now,
            lastSeenAt: now,
            mailbox,
            generation,
            pendingKinds: new Set(input.kinds)
          }
          workers.set(id, entry)
          yield* Effect.addFinalizer(() =>
            Effect.suspend(() => {
              if (entry.generation === generation && workers.get(id) === entry) {
                entry.mailbox = null
                entry.lastSeenAt = Date.now()
              }
              return Queue.shutdown(mailbox)
            })
          )
          Queue.unsafeOffer(mailbox, { _tag: "Registered", workerId: id, leaseSeconds: config.leaseSeconds })
          Queue.unsafeOffer(mailbox, { _tag: "WorkAvailable", kinds: input.kinds })
          return Stream.fromQueue(mailbox).pipe(
            Stream.map((message): WorkerPush => {
              if (message._tag !== "WorkAvailable") return message
              const kinds = entry.pendingKinds === null ? message.kinds : [...entry.pendingKinds]
              entry.pendingKinds = null
              return { _tag: "WorkAvailable", kinds }
            })
          )
        })
      )

    /** Tells every connected worker serving one of `kinds` that work may be available (coalesced). */
    const notify = (kinds: ReadonlySet<TaskKind>) =>
      Effect.sync(() => {
        if (kinds.size === 0) return
        for (const entry of workers.values()) {
          if (entry.mailbox === null) continue
          const matching = entry.kinds.filter((k) => kinds.has(k))
          if (matching.length === 0) continue
          if (entry.pendingKinds !== null) {
            for (const k of matching) entry.pendingKinds.add(k)
            continue
          }
          entry.pendingKinds = new Set(matching)
          push(entry, { _tag: "WorkAvailable", kinds: matching })
        }
      })

    const cancel = (workerId: WorkerId, taskId: TaskId) =>
      Effect.sync(() => {
        const entry = workers.get(workerId)
        if (entry) push(entry, { _tag: "CancelTask", taskId })
      })

    const touch = (workerId: WorkerId) =>
      Effect.sync(() => {
        const entry = workers.get(workerId)
        if (entry) entry.lastSeenAt = Date.now()
      })

    /** Every known worker, connected first; `inFlight` comes from the queue's leases. */
    const list = (inFlight: ReadonlyMap<string, number>) =>
      Effect.sync(() => {
        const forgetBefore = Date.now() - FORGET_AFTER_MS
        for (const [id, e] of workers) {
          if (e.mailbox === null && e.lastSeenAt < forgetBefore && !inFlight.has(id)) workers.delete(id)
        }
        return [...workers.values()]
          .map((e) =>
            WorkerInfo.make({
              id: e.id,
              name: e.name,
              kinds: e.kinds,
              capacity: e.capacity,
              inFlight: inFlight.get(e.id) ?? 0,
              connected: e.mailbox !== null,
              connectedAt: e.connectedAt,
              lastSeenAt: e.lastSeenAt
            })
          )
          .sort((a, b) => Number(b.connected) - Number(a.connected) || a.connectedAt - b.connectedAt)
      })

    const connectedCount = Effect.sync(() => {
      let n = 0
      for (const e of workers.values()) if (e.mailbox !== null) n++
      return n
    })

    return { connect, notify, cancel, touch, list, connectedCount } as const
  })
}) {}
