import * as Reactivity from "@effect/experimental/Reactivity"
import { Chunk, Context, Duration, Effect, Layer, Scope, Stream } from "effect"
import type { WorkerPush } from "../../src/domain/rpc/WorkerRpcs.js"
import { ServerConfig, type ServerConfigShape } from "../../src/config/ServerConfig.js"
import type { ProjectId } from "../../src/domain/Ids.js"
import { EnqueueTask, type TaskKind } from "../../src/domain/Task.js"
import { EventBus } from "../../src/events/EventBus.js"
import { DatabaseLive } from "../../src/storage/Database.js"
import { QueueLive } from "../../src/queue/QueueLive.js"
import { TaskQueue } from "../../src/queue/TaskQueue.js"
import { type Connection, WorkerHub, workerIdFor } from "../../src/queue/WorkerHub.js"
import { tempDir } from "../support/TempDir.js"
import { pollUntil } from "../support/Until.js"

/**
 * The queue, its worker registry and the event bus on a real `queue.db` in a temp dir (or `dataDir`,
 * to "restart"), for the caller's scope.
 */
export const startQueue = (overrides: Partial<ServerConfigShape> = {}) =>
  Effect.gen(function* () {
    const dataDir = overrides.dataDir ?? tempDir("kiris-queue-")
    const layer = QueueLive.pipe(
      Layer.provideMerge(EventBus.Default),
      Layer.provideMerge(DatabaseLive),
      Layer.provideMerge(ServerConfig.layerWith({ taskRetryBaseMs: 50, reaperIntervalMs: 100, ...overrides, dataDir })),
      Layer.provideMerge(Reactivity.layer)
    )
    const context = yield* Layer.buildWithScope(layer, yield* Scope.Scope)
    return {
      dataDir,
      queue: Context.get(context, TaskQueue),
      hub: Context.get(context, WorkerHub),
      bus: Context.get(context, EventBus)
    }
  })

export const project = "prj_test" as ProjectId
export const otherProject = "prj_other" as ProjectId
/** A worker id issued to the tests' default key (`connection`'s owner). */
export const worker = (name: string) => workerIdFor("key_test", name)

/** A worker connection for `hub.connect`: connection number and the key it authenticated with. */
export const connection = (clientId: number, owner = "key_test"): Connection => ({ clientId, owner })

export const task = (fields: Partial<ConstructorParameters<typeof EnqueueTask>[0]> & { kind?: TaskKind } = {}) =>
  EnqueueTask.make({ projectId: project, kind: "noop", payload: {}, ...fields })

/** Repeats `effect` until `done` holds for its value, or dies after `ms`. */
export const eventually = <A, E, R>(effect: Effect.Effect<A, E, R>, done: (a: A) => boolean, ms = 5000) =>
  pollUntil(
    "the condition",
    Effect.map(effect, (value) => (done(value) ? { value } : undefined)),
    { timeout: Duration.millis(ms) }
  ).pipe(Effect.map((found) => found.value))

/** Pulls pushes one chunk at a time, for the caller's scope. */
export const pushesOf = <E>(stream: Stream.Stream<WorkerPush, E>) =>
  Effect.gen(function* () {
    const pull = yield* Stream.toPull(stream)
    const buffered: Array<WorkerPush> = []
    return Effect.gen(function* () {
      while (buffered.length === 0) buffered.push(...Chunk.toReadonlyArray(yield* Effect.orDie(pull)))
      return buffered.shift()!
    })
  })
