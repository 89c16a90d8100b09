import { Effect } from "effect"
import { newId } from "../auth/Crypto.js"
import { InvalidInput } from "../domain/Errors.js"
import type { TaskId } from "../domain/Ids.js"
import { type MapRequest, MapResult } from "../domain/rpc/TaskRpcs.js"
import { EnqueueTask } from "../domain/Task.js"
import { TaskQueue } from "./TaskQueue.js"

export const MAX_MAP_ITEMS = 10_000

/**
 * Fan-out/fan-in behind `task.map`: one task per item plus, when `reduce` or `reduceKind` is given, a
 * reduce task that depends on all of them with the request's policy (`fail-fast`, `partial`,
 * `quorum:K`; see DependencyPolicy). Everything is enqueued in one commit.
 */
export class MapReduce extends Effect.Service<MapReduce>()("kiris/MapReduce", {
  effect: Effect.gen(function* () {
    const queue = yield* TaskQueue

    const map = Effect.fn("MapReduce.map")(function* (request: MapRequest) {
      const n = request.items.length
      if (n === 0) return yield* new InvalidInput({ reason: "map needs at least one item" })
      if (n > MAX_MAP_ITEMS) return yield* new InvalidInput({ reason: `map takes at most ${MAX_MAP_ITEMS} items` })
      if (request.policy.startsWith("quorum:")) {
        const k = Number(request.policy.slice("quorum:".length))
        if (!Number.isInteger(k) || k < 1 || k > n) {
          return yield* new InvalidInput({ reason: `quorum must be an integer from 1 to the number of items (${n})` })
        }
      }
      const common = {
        projectId: request.projectId,
        ...(request.priority !== undefined ? { priority: request.priority } : {}),
        ...(request.maxAttempts !== undefined ? { maxAttempts: request.maxAttempts } : {})
      }
      const mapTasks = request.items.map((payload) => ({
        ...EnqueueTask.make({ ...common, kind: request.kind, payload }),
        id: newId("tsk") as TaskId
      }))
      const withReduce = request.reduce !== undefined || request.reduceKind !== undefined
      const reduceTask = withReduce
        ? [
            EnqueueTask.make({
              ...common,
              kind: request.reduceKind ?? request.kind,
              payload: request.reduce ?? null,
              dependsOn: mapTasks.map((t) => t.id),
              dependencyPolicy: request.policy
            })
          ]
        : []
      const tasks = yield* queue.enqueueBatch([...mapTasks, ...reduceTask])
      return MapResult.make({ mapTasks: tasks.slice(0, n), reduceTask: withReduce ? tasks[n]! : null })
    })

    return { map } as const
  })
}) {}
