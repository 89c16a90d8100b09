import { Effect, Queue, Stream } from "effect"
import { randomToken, sha256 } from "../auth/Crypto.js"
import { ServerConfig } from "../config/ServerConfig.js"
import { Forbidden, NotFound } from "../domain/Errors.js"
import type { TaskId, WorkerId } from "../domain/Ids.js"
import type { WorkerPush } from "../domain/rpc/WorkerRpcs.js"
import { type TaskKind, WorkerInfo } from "../domain/Task.js"

/** A disconnected worker holding no lease is forgotten after this long. */
const FORGET_AFTER_MS = 15 * 60_000

interface Entry {
  readonly id: WorkerId
  /** Who registered it (an API key id): only the same key may reclaim it. */
  readonly owner: string
  /** The connection it is registered on; null while disconnected. */
  clientId: number | null
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
  /** Told to drain: gets no more WorkAvailable, also after a reconnect. */
  draining: boolean
}

export interface ConnectInput {
  readonly workerId?: WorkerId | undefined
  readonly name: string
  readonly kinds: ReadonlyArray<TaskKind>
  readonly capacity: number
}

/** Who is connecting: the connection (the RPC `clientId`) and the identity of its key. */
export interface Connection {
  readonly clientId: number
  readonly owner: string
}

/**
 * The registry of swarm workers and their push channels (`worker.connect`). It owns who is
 * connected, on which connection and with which key, and what they run, and pushes "work
 * available" and "cancel task"; it holds no tasks. A worker id acts only from the connection it is
 * registered on. A dropped connection releases the registration and marks the worker disconnected
 * (its leases stay until they expire); a reconnect with the same id and the same key reclaims it.
 */
/**
 * Worker ids carry a tag of the key they were issued to, so that only that key can reclaim one, also
 * after a hub restart has emptied the registry.
 */
const ownerTag = (owner: string) => sha256(owner).slice(0, 12)
/** A worker id of `owner`'s, ending in `suffix`. */
export const workerIdFor = (owner: string, suffix: string) => `wrk_${ownerTag(owner)}_${suffix}` as WorkerId
const issueWorkerId = (owner: string) => workerIdFor(owner, randomToken(9))
const issuedTo = (id: WorkerId, owner: string) => id.startsWith(`wrk_${ownerTag(owner)}_`)

export class WorkerHub extends Effect.Service<WorkerHub>()("kiris/WorkerHub", {
  effect: Effect.gen(function* () {
    const config = yield* ServerConfig
    const workers = new Map<string, Entry>()
    /** Worker ids registered on each live connection. */
    const byClient = new Map<number, Set<WorkerId>>()
    let generations = 0

    const attach = (entry: Entry, clientId: number) => {
      entry.clientId = clientId
      const ids = byClient.get(clientId)
      if (ids) ids.add(entry.id)
      else byClient.set(clientId, new Set([entry.id]))
    }
    const detach = (entry: Entry) => {
      if (entry.clientId === null) return
      const ids = byClient.get(entry.clientId)
      ids?.delete(entry.id)
      if (ids?.size === 0) byClient.delete(entry.clientId)
      entry.clientId = null
    }

    const push = (entry: Entry, message: WorkerPush) => {
      if (entry.mailbox !== null) Queue.unsafeOffer(entry.mailbox, message)
    }

    /**
     * Registers the worker on `connection`: `Registered` first, then pushes, until the stream (the
     * connection) ends. A known id is reclaimed only by the key that registered it.
     */
    const connect = (input: ConnectInput, connection: Connection): Stream.Stream<WorkerPush, Forbidden> =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const id = input.workerId ?? issueWorkerId(connection.owner)
          const previous = workers.get(id)
          if (previous !== undefined ? previous.owner !== connection.owner : !issuedTo(id, connection.owner)) {
            return yield* new Forbidden({ reason: `worker id ${id} belongs to another key` })
          }
          const mailbox = yield* Queue.unbounded<WorkerPush>()
          const generation = ++generations
          const now = Date.now()
          if (previous !== undefined) {
            detach(previous)
            if (previous.mailbox) yield* Queue.shutdown(previous.mailbox)
          }
          const entry: Entry = {
            id,
            owner: connection.owner,
            clientId: null,
            name: input.name,
            kinds: input.kinds,
            capacity: input.capacity,
            connectedAt: now,
            lastSeenAt: now,
            mailbox,
            generation,
            pendingKinds: new Set(input.kinds),
            draining: previous?.draining ?? false
          }
          workers.set(id, entry)
          attach(entry, connection.clientId)
          yield* Effect.addFinalizer(() =>
            Effect.suspend(() => {
              if (entry.generation === generation && workers.get(id) === entry) {
                detach(entry)
                entry.mailbox = null
                entry.lastSeenAt = Date.now()
              }
              return Queue.shutdown(mailbox)
            })
          )
          Queue.unsafeOffer(mailbox, { _tag: "Registered", workerId: id, leaseSeconds: config.leaseSeconds })
          // a drain outlives a reconnect: the worker is told again instead of being offered work
          Queue.unsafeOffer(mailbox, entry.draining ? { _tag: "Drain" } : { _tag: "WorkAvailable", kinds: input.kinds })
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
          if (entry.mailbox === null || entry.draining) continue
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

    /**
     * Asks a connected worker to drain: finish its running tasks, lease no new ones, then exit.
     * It is offered no more work from now on.
     */
    const drain = (workerId: WorkerId) =>
      Effect.suspend(() => {
        const entry = workers.get(workerId)
        if (entry === undefined || entry.mailbox === null) {
          return Effect.fail(new NotFound({ entity: "worker", id: workerId }))
        }
        entry.draining = true
        push(entry, { _tag: "Drain" })
        return Effect.void
      })

    /** The worker ids that `connection`'s key registered on that connection (usually one). */
    const registered = (connection: Connection) =>
      Effect.sync((): ReadonlyArray<WorkerId> => {
        const ids = byClient.get(connection.clientId)
        if (ids === undefined) return []
        const out: Array<WorkerId> = []
        for (const id of ids) if (workers.get(id)?.owner === connection.owner) out.push(id)
        return out
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

    /** Connected workers and the tasks they run at once (their capacities summed). */
    const connectedSlots = Effect.sync(() => {
      let connected = 0
      let slots = 0
      for (const e of workers.values()) {
        if (e.mailbox === null) continue
        connected++
        slots += e.capacity
      }
      return { workers: connected, slots }
    })

    return { connect, registered, notify, cancel, drain, touch, list, connectedCount, connectedSlots } as const
  })
}) {}
