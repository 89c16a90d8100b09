import { Clock, Effect, Queue, Stream } from "effect"
import { randomToken, sha256 } from "../auth/Crypto.js"
import { ServerConfig } from "../config/ServerConfig.js"
import { Forbidden, NotFound } from "../domain/Errors.js"
import type { TaskId, WorkerId } from "../domain/Ids.js"
import type { WorkerPush } from "../domain/rpc/WorkerRpcs.js"
import { type TaskKind, WorkerInfo } from "../domain/Task.js"

/**
 * A disconnected worker is forgotten after this long (its leases, if any, expire on their own), and
 * at once beyond the most recent `MAX_DISCONNECTED`: the registry holds the connected workers and a
 * bounded window of recently disconnected ones (`kiris workers` shows them as disconnected; a
 * reconnect within the window keeps its drain).
 */
export const FORGET_AFTER_MS = 15 * 60_000
export const MAX_DISCONNECTED = 1000
/**
 * Pushes a worker connection may have unread; beyond it `cancel` and `drain` wait (backpressure)
 * until the worker reads, and a WorkAvailable is skipped (the next one, or the worker's own
 * periodic look, catches up).
 */
export const MAILBOX_CAPACITY = 256

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

    /** Offers to the worker's mailbox, waiting while it is full; nothing when the connection is gone. */
    const push = (entry: Entry, message: WorkerPush) =>
      entry.mailbox === null ? Effect.void : Effect.asVoid(Effect.exit(Queue.offer(entry.mailbox, message)))

    /**
     * Forgets disconnected workers gone for longer than FORGET_AFTER_MS, and the oldest beyond
     * MAX_DISCONNECTED. Runs on every disconnect, so the registry never outgrows that window.
     */
    const sweep = (now: number) => {
      const forgetBefore = now - FORGET_AFTER_MS
      const disconnected: Array<Entry> = []
      for (const [id, e] of workers) {
        if (e.mailbox !== null) continue
        if (e.lastSeenAt < forgetBefore) workers.delete(id)
        else disconnected.push(e)
      }
      if (disconnected.length <= MAX_DISCONNECTED) return
      disconnected.sort((a, b) => a.lastSeenAt - b.lastSeenAt)
      for (const e of disconnected.slice(0, disconnected.length - MAX_DISCONNECTED)) workers.delete(e.id)
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
          const mailbox = yield* Queue.bounded<WorkerPush>(MAILBOX_CAPACITY)
          const generation = ++generations
          const now = yield* Clock.currentTimeMillis
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
            Effect.flatMap(Clock.currentTimeMillis, (now) => {
              if (entry.generation === generation && workers.get(id) === entry) {
                detach(entry)
                entry.mailbox = null
                entry.lastSeenAt = now
                sweep(now)
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
          // never waits: a full mailbox means the worker is behind, and a WorkAvailable can be skipped
          if (Queue.unsafeOffer(entry.mailbox, { _tag: "WorkAvailable", kinds: matching })) entry.pendingKinds = new Set(matching)
        }
      })

    /** Tells the worker to stop a task; waits while its mailbox is full. */
    const cancel = (workerId: WorkerId, taskId: TaskId) =>
      Effect.suspend(() => {
        const entry = workers.get(workerId)
        return entry === undefined ? Effect.void : push(entry, { _tag: "CancelTask", taskId })
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
        return push(entry, { _tag: "Drain" })
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
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.sync(() => {
          const entry = workers.get(workerId)
          if (entry) entry.lastSeenAt = now
        })
      )

    /** Every known worker, connected first; `inFlight` comes from the queue's leases. */
    const list = (inFlight: ReadonlyMap<string, number>) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        sweep(now)
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

    /** Workers the registry holds (connected or not); pushes a worker's connection has not read yet (plus callers waiting to add one). */
    const size = Effect.sync(() => workers.size)
    const mailboxSize = (workerId: WorkerId) =>
      Effect.suspend(() => {
        const mailbox = workers.get(workerId)?.mailbox
        return mailbox == null ? Effect.succeed(0) : Queue.size(mailbox)
      })

    return { connect, registered, notify, cancel, drain, touch, list, connectedCount, connectedSlots, size, mailboxSize } as const
  })
}) {}
