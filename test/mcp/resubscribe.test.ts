import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { type CallToolResult, ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js"
import { Chunk, Context, Deferred, Effect, Option, Schedule, Stream } from "effect"
import type { SubscriptionItem } from "../../src/domain/Event.js"
import type { ProjectId, TaskId } from "../../src/domain/Ids.js"
import { EventBus } from "../../src/events/EventBus.js"
import { startHub } from "../support/Hub.js"

/**
 * A subscribed task resource keeps getting `notifications/resources/updated` after the hub ended
 * the MCP server's event stream of its project (`Lagged`): the server subscribes again from the
 * last seq it saw.
 */

const BUFFER = 4
const BURST = 60

const progress = (i: number) => ({ _tag: "TaskProgress", taskId: "tsk_burst" as TaskId, parts: [`p${i}`] }) as const

const structured = <A>(result: CallToolResult): A => {
  assert.notStrictEqual(result.isError, true, `tool failed: ${JSON.stringify(result.content)}`)
  return result.structuredContent as A
}

describe("MCP resource subscriptions", () => {
  it.scopedLive(
    "survive the hub ending the project's event stream (Lagged): a later cancel still notifies the subscribed task",
    () =>
      Effect.gen(function* () {
        const hub = yield* startHub({ eventBuffer: BUFFER })
        const admin = yield* hub.tcpClient()
        const project = yield* admin.project.create({ name: "mcp" })
        const projectId = project.id as ProjectId
        const bus = Context.get(hub.context, EventBus)

        const client = yield* Effect.acquireRelease(
          Effect.promise(async () => {
            const c = new Client({ name: "kiris-test", version: "1.0.0" })
            await c.connect(
              new StreamableHTTPClientTransport(new URL(`${hub.httpUrl}/mcp`), {
                requestInit: { headers: { authorization: `Bearer ${hub.adminKey}` } }
              })
            )
            return c
          }),
          (c) => Effect.promise(() => c.close().catch(() => undefined))
        )
        const call = (name: string, args: Record<string, unknown>) =>
          Effect.promise(() => client.callTool({ name, arguments: args }, undefined, { timeout: 60_000 }) as Promise<CallToolResult>)

        const human = structured<{ task: { id: string } }>(yield* call("submit_task", { project: "mcp", kind: "human", prompt: "ok?" }))
        const uri = `kiris://tasks/${human.task.id}`
        const updated = yield* Deferred.make<string>()
        client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
          if (n.params.uri === uri) Deferred.unsafeDone(updated, Effect.succeed(n.params.uri))
        })

        // A subscriber of our own, reading nothing: it shows what the burst does to the MCP server's.
        const probe = yield* Stream.toPull(yield* bus.subscribeProject(projectId, Option.none()))
        const before = yield* bus.subscriberCount
        yield* Effect.promise(() => client.subscribeResource({ uri }))
        // The MCP server's events.subscribe is registered on the bus.
        yield* bus.subscriberCount.pipe(
          Effect.filterOrFail((n) => n > before),
          Effect.retry(Schedule.spaced("20 millis")),
          Effect.timeout("30 seconds")
        )

        // One burst, delivered at once: more than any subscriber's backlog holds.
        yield* bus.publishAll(
          projectId,
          Array.from({ length: BURST }, (_, i) => progress(i))
        )
        const seen: Array<SubscriptionItem> = []
        while (!seen.some((i) => i._tag === "Lagged")) {
          const chunk = yield* Effect.either(probe)
          if (chunk._tag === "Left") break
          seen.push(...Chunk.toReadonlyArray(chunk.right))
        }
        assert.isTrue(
          seen.some((i) => i._tag === "Lagged"),
          "the burst made subscribers lag"
        )

        structured(yield* call("cancel_task", { taskId: human.task.id }))
        const got = yield* Deferred.await(updated).pipe(Effect.timeout("30 seconds"), Effect.option)
        assert.isTrue(Option.isSome(got), "no notifications/resources/updated after the stream ended")
        assert.strictEqual(Option.getOrUndefined(got), uri)

        // Closing the MCP session ends its watch: no subscription is left on the bus, none comes back.
        const transport = client.transport as StreamableHTTPClientTransport
        yield* Effect.promise(() => transport.terminateSession())
        yield* bus.subscriberCount.pipe(
          Effect.filterOrFail((n) => n === 0),
          Effect.retry(Schedule.spaced("20 millis")),
          Effect.timeout("30 seconds")
        )
      }),
    90_000
  )
})
