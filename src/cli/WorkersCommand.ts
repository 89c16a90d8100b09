import { Args, Command } from "@effect/cli"
import { Effect } from "effect"
import type { HubRpcClient } from "../client/HubClient.js"
import type { WorkerId } from "../domain/Ids.js"
import type { WorkerInfo } from "../domain/Task.js"
import { CliError, clientOptions, output, outputOptions, withClient } from "./ClientOptions.js"
import { formatTable, formatTime } from "./Table.js"

/** `kiris workers`: the workers known to the hub; `kiris workers drain ID` stops one gracefully. */

const workerTable = (ws: ReadonlyArray<WorkerInfo>) =>
  ws.length === 0
    ? "no workers"
    : formatTable(ws, [
        { header: "id", value: (w) => w.id },
        { header: "name", value: (w) => w.name },
        { header: "connected", value: (w) => (w.connected ? "yes" : "no") },
        { header: "running", value: (w) => `${w.inFlight}/${w.capacity}` },
        { header: "kinds", value: (w) => w.kinds.join(",") },
        { header: "last seen", value: (w) => formatTime(w.lastSeenAt) }
      ])

const list = (o: { readonly json: boolean } & Parameters<typeof withClient>[0]) =>
  withClient(o, (client) => client.task.workers().pipe(Effect.flatMap((ws) => output(o.json, ws, () => workerTable(ws)))))

/** A worker id as given, or the id of the one connected worker with that name. */
const resolveWorker = (client: HubRpcClient, given: string) =>
  Effect.gen(function* () {
    if (given.startsWith("wrk_")) return given as WorkerId
    const named = (yield* client.task.workers()).filter((w) => w.connected && w.name === given)
    if (named.length === 1) return named[0]!.id
    return yield* new CliError({
      message:
        named.length === 0 ? `no connected worker named ${given} (see \`kiris workers\`)` : `several connected workers are named ${given}: give an id`
    })
  })

const drain = Command.make(
  "drain",
  {
    ...clientOptions,
    ...outputOptions,
    worker: Args.text({ name: "worker" }).pipe(Args.withDescription("Worker id (wrk_…) or the name of a connected worker, as `kiris workers` shows"))
  },
  (o) =>
    withClient(o, (client) =>
      Effect.gen(function* () {
        const workerId = yield* resolveWorker(client, o.worker)
        yield* client.task.drainWorker({ workerId })
        yield* output(o.json, { workerId, draining: true }, () => `${workerId} draining`)
      })
    )
).pipe(
  Command.withDescription(
    "Drain a worker (server admins only): it finishes its running tasks however long they take, leases no new ones, then exits 0. " +
      "A worker under `kiris up` is not restarted afterwards"
  )
)

export const workersCommand = Command.make("workers", { ...clientOptions, ...outputOptions }, list).pipe(
  Command.withDescription("List the workers known to the hub (`kiris workers drain ID` drains one)"),
  Command.withSubcommands([drain])
)
