import { ConfigProvider, Deferred, type Duration, Effect, Stream, SubscriptionRef } from "effect"
import * as os from "node:os"
import type { HubRpcClient } from "../../src/client/HubClient.js"
import type { ServerConfigShape } from "../../src/config/ServerConfig.js"
import type { DomainEvent, EventBody } from "../../src/domain/Event.js"
import type { ProjectId, SessionId } from "../../src/domain/Ids.js"
import type { Message } from "../../src/domain/Session.js"
import type { FakeOpenAI } from "./FakeOpenAI.js"
import { startHub } from "./Hub.js"
import { type Backend, backendConfig } from "./Pg.js"
import { untilRef } from "./Until.js"

/** The environment that points a hub process (or `kiris worker`) at the fake OpenAI-compatible server. */
export const fakeModelEnv = (fake: FakeOpenAI): Record<string, string> => ({
  KIRIS_MODEL: "openai-compatible:fake",
  KIRIS_OPENAI_COMPATIBLE_BASE_URL: fake.baseURL,
  KIRIS_LLM_MAX_RETRIES: "0"
})

/** Model settings pointing the hub at the fake OpenAI-compatible server. */
export const fakeModelConfig = (fake: FakeOpenAI, extra: Record<string, string> = {}) =>
  ConfigProvider.fromMap(new Map(Object.entries({ ...fakeModelEnv(fake), ...extra })))

/**
 * A whole hub in this process whose default model is the fake server's; server admins may use
 * existing directories under the system temp dir as workspaces.
 */
export const startAgentHub = (fake: FakeOpenAI, options: Partial<ServerConfigShape> = {}) =>
  startHub({ workspaceRoots: [os.tmpdir()], ...options }).pipe(Effect.withConfigProvider(fakeModelConfig(fake)))

export type Transport = "tcp" | "ws"

export const transports: ReadonlyArray<Transport> = ["tcp", "ws"]

export const assistantMessages = (events: ReadonlyArray<DomainEvent>, sessionId: SessionId): ReadonlyArray<Message> => {
  const latest = new Map<string, Message>()
  for (const e of events) {
    const body: EventBody = e.event
    if (body._tag === "MessageUpdated" && body.message.sessionId === sessionId && body.message.role === "assistant") {
      latest.set(body.message.id, body.message)
    }
  }
  return [...latest.values()]
}

export const finishedTurns = (events: ReadonlyArray<DomainEvent>, sessionId: SessionId) =>
  assistantMessages(events, sessionId).filter((m) => m.status !== "running")

/**
 * Subscribes a client to a project's events (waiting for `Ready`) and records them; `until`
 * resolves as soon as the recorded events satisfy a condition, without polling or sleeping.
 */
export const watchProject = (client: HubRpcClient, projectId: ProjectId) =>
  Effect.gen(function* () {
    const log = yield* SubscriptionRef.make<ReadonlyArray<DomainEvent>>([])
    const ready = yield* Deferred.make<void>()
    yield* client.events.subscribe({ projectId }).pipe(
      Stream.runForEach((item) => {
        if (item._tag === "Ready") return Deferred.succeed(ready, undefined)
        if (item._tag === "Lagged") return Effect.dieMessage(`subscriber lagged by ${item.missed}`)
        // presence changes (and Reset, which a subscription without `since` never gets) are not events
        if (item._tag !== "Event") return Effect.void
        return SubscriptionRef.update(log, (l) => [...l, item.event])
      }),
      Effect.forkScoped
    )
    yield* Deferred.await(ready)
    const until = <A>(f: (events: ReadonlyArray<DomainEvent>) => A | undefined, timeout: Duration.DurationInput = "20 seconds") =>
      untilRef(log, "events", f, timeout)
    /** Resolves once the session has `n` finished assistant messages; returns them. */
    const turns = (sessionId: SessionId, n = 1) =>
      until((events) => {
        const done = finishedTurns(events, sessionId)
        return done.length >= n ? done : undefined
      })
    return { events: SubscriptionRef.get(log), until, turns }
  })

/**
 * A hub on `backend` answering with `fake`, a client over `transport`, a new project named `name`
 * with one session, and a watch of the project's events started before anything happens in it.
 */
export const watchedSession = (fake: FakeOpenAI, backend: Backend, name: string, transport: "tcp" | "ws" = "ws") =>
  Effect.gen(function* () {
    const hub = yield* startAgentHub(fake, yield* backendConfig(backend))
    const client = transport === "tcp" ? yield* hub.tcpClient() : yield* hub.wsClient()
    const project = yield* client.project.create({ name, description: "" })
    const session = yield* client.session.create({ projectId: project.id })
    const watch = yield* watchProject(client, project.id)
    return { hub, client, project, session, watch }
  })
