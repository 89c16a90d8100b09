import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { MapRequest } from "../../src/domain/rpc/TaskRpcs.js"
import type { Lease } from "../../src/domain/Task.js"
import { MapReduce } from "../../src/queue/MapReduce.js"
import { TaskQueue } from "../../src/queue/TaskQueue.js"
import { project, startQueue, worker } from "./support.js"
import { type Backend, backendConfig, backends } from "../support/Pg.js"

const withMapReduce = (backend: Backend) =>
  Effect.gen(function* () {
    const started = yield* startQueue(yield* backendConfig(backend))
    const mapReduce = yield* MapReduce.pipe(Effect.provide(MapReduce.Default.pipe(Layer.provide(Layer.succeed(TaskQueue, started.queue)))))
    return { ...started, mapReduce }
  })

const shuffled = <A>(items: ReadonlyArray<A>): Array<A> => {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

const N = 50
const request = (policy: MapRequest["policy"]) =>
  MapRequest.make({
    projectId: project,
    kind: "noop",
    items: Array.from({ length: N }, (_, i) => ({ item: i, name: `file-${i}` })),
    reduce: { prompt: "combine {results}" },
    reduceKind: "chat",
    policy
  })

describe.each(backends)("reduce inputs on %s", (backend) => {
  it.scopedLive("a reducer sees the map results in item order, each with its index and item, whatever order they ended in", () =>
    Effect.gen(function* () {
      const { mapReduce, queue } = yield* withMapReduce(backend)
      const { mapTasks, reduceTask } = yield* mapReduce.map(request("fail-fast"))
      // lease on several workers, then complete in a random order
      const leases: Array<Lease> = []
      for (const w of ["a", "b", "c", "d", "e"]) leases.push(...(yield* queue.lease(worker(w), ["noop"], 10)))
      assert.strictEqual(leases.length, N)
      const holder = new Map(leases.map((l, i) => [l.task.id, worker(["a", "b", "c", "d", "e"][Math.floor(i / 10)]!)]))
      for (const l of shuffled(leases)) {
        const index = (l.task.payload as { item: number }).item
        yield* queue.complete(holder.get(l.task.id)!, l.task.id, l.fencingToken, { out: index * 10 })
      }
      const [reducer] = yield* queue.lease(worker("r"), ["chat"], 1)
      assert.strictEqual(reducer!.task.id, reduceTask!.id)
      assert.deepStrictEqual(
        reducer!.dependencies.map((d) => d.index),
        Array.from({ length: N }, (_, i) => i)
      )
      reducer!.dependencies.forEach((d, i) => {
        assert.strictEqual(d.taskId, mapTasks[i]!.id)
        assert.deepStrictEqual(d.item, { item: i, name: `file-${i}` })
        assert.strictEqual(d.status, "done")
        assert.deepStrictEqual(d.result, { out: i * 10 })
        assert.isNull(d.error)
      })
      // `inputs` keeps its shape (bare results by id) and lists them in the same order
      assert.deepStrictEqual(
        Object.keys(reducer!.inputs),
        mapTasks.map((t) => t.id)
      )
      assert.deepStrictEqual(
        Object.values(reducer!.inputs),
        Array.from({ length: N }, (_, i) => ({ out: i * 10 }))
      )
    })
  )

  it.scopedLive("with policy partial, failed items appear in their place with their error", () =>
    Effect.gen(function* () {
      const { mapReduce, queue } = yield* withMapReduce(backend)
      const { reduceTask } = yield* mapReduce.map(request("partial"))
      const leases = yield* queue.lease(worker("w"), ["noop"], N)
      assert.strictEqual(leases.length, N)
      for (const l of shuffled(leases)) {
        const index = (l.task.payload as { item: number }).item
        if (index % 7 === 3) yield* queue.fail(worker("w"), l.task.id, l.fencingToken, `no such file: file-${index}`, false)
        else yield* queue.complete(worker("w"), l.task.id, l.fencingToken, index)
      }
      const [reducer] = yield* queue.lease(worker("r"), ["chat"], 1)
      assert.strictEqual(reducer!.task.id, reduceTask!.id)
      assert.strictEqual(reducer!.dependencies.length, N)
      reducer!.dependencies.forEach((d, i) => {
        assert.strictEqual(d.index, i)
        assert.deepStrictEqual(d.item, { item: i, name: `file-${i}` })
        if (i % 7 === 3) {
          assert.strictEqual(d.status, "failed")
          assert.isNull(d.result)
          assert.strictEqual(d.error, `no such file: file-${i}`)
        } else {
          assert.strictEqual(d.status, "done")
          assert.strictEqual(d.result, i)
          assert.isNull(d.error)
        }
      })
      const inputs = Object.values(reducer!.inputs) as ReadonlyArray<{ index: number; item: unknown; status: string; error: string | null }>
      assert.deepStrictEqual(
        inputs.map((v) => v.index),
        Array.from({ length: N }, (_, i) => i)
      )
      assert.strictEqual(inputs[3]!.error, "no such file: file-3")
      assert.deepStrictEqual(inputs[3]!.item, { item: 3, name: "file-3" })
    })
  )
})
