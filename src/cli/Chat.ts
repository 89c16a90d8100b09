import { Command, Options } from "@effect/cli"
import { Config, Deferred, Effect, Option, Queue, Stream } from "effect"
import * as readline from "node:readline"
import { type HubRpcClient, makeHubClient, parseHub } from "../client/HubClient.js"
import type { ProjectId, SessionId } from "../domain/Ids.js"
import { answerOf, makeChatRenderer, toolLine } from "./ChatRender.js"
import { type Input, makeChatLoop, write } from "./ChatSession.js"
import { CliError, clientOptions, reportErrors, resolveToken } from "./ClientOptions.js"

/** `kiris chat`: a terminal client of one agent session over the hub's WebSocket RPC. */

export const DEFAULT_HTTP = "http://127.0.0.1:7420"

const chatOptions = {
  hubHttp: Options.text("hub-http").pipe(
    Options.withDescription(`The hub's HTTP address; default $KIRIS_HTTP, else ${DEFAULT_HTTP}`),
    Options.optional
  ),
  token: clientOptions.token,
  project: Options.text("project").pipe(
    Options.withDescription("Project name or id (created when no project has that name)"),
    Options.withDefault("default")
  ),
  session: Options.text("session").pipe(Options.withDescription("Resume this session instead of starting one"), Options.optional),
  model: Options.text("model").pipe(Options.withDescription("provider:model for a new session (default: the hub's)"), Options.optional),
  agent: Options.text("agent").pipe(Options.withDescription("Agent of a new session (default, explore, general)"), Options.optional),
  prompt: Options.text("prompt").pipe(
    Options.withAlias("p"),
    Options.withDescription("Send this prompt, print the final answer and exit (non-zero when the turn fails)"),
    Options.optional
  ),
  yes: Options.boolean("yes").pipe(Options.withDescription("Approve every permission request"))
}

type ChatFlags = Command.Command.ParseConfig<typeof chatOptions>

const resolveHttp = (flag: Option.Option<string>) =>
  Option.match(flag, {
    onSome: Effect.succeed,
    onNone: () => Config.string("KIRIS_HTTP").pipe(Config.withDefault(DEFAULT_HTTP), Effect.orElseSucceed(() => DEFAULT_HTTP))
  })

const findOrCreateProject = (client: HubRpcClient, nameOrId: string) =>
  Effect.gen(function* () {
    const found = (yield* client.project.list()).find((p) => p.id === nameOrId || p.name === nameOrId)
    if (found) return found
    if (nameOrId.startsWith("prj_")) return yield* new CliError({ message: `no project ${nameOrId}` })
    return yield* client.project.create({ name: nameOrId, description: "" })
  })

const openSession = (client: HubRpcClient, projectId: ProjectId, o: ChatFlags) =>
  Option.match(o.session, {
    onSome: (id) =>
      Effect.gen(function* () {
        const history = yield* client.session.get({ projectId, sessionId: id as SessionId })
        for (const { message, parts } of history.messages) {
          if (message.role === "user") yield* write({ stdout: `> ${answerOf(parts)}\n`, stderr: "" })
          else {
            for (const p of parts) if (p.data._tag === "tool") yield* write({ stdout: `${toolLine(p.data)}\n`, stderr: "" })
            const answer = answerOf(parts)
            if (answer !== "") yield* write({ stdout: `${answer}\n`, stderr: "" })
          }
        }
        return history.session
      }),
    onNone: () =>
      client.session.create({
        projectId,
        ...(Option.isSome(o.model) ? { model: o.model.value } : {}),
        ...(Option.isSome(o.agent) ? { agent: o.agent.value } : {})
      })
  })

/** Lines, Ctrl-C and end of input from the terminal (or a pipe) into the inbox; the prompt is shown on a terminal. */
const attachInput = (inbox: Queue.Queue<Input>, interactive: boolean) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: interactive })
      rl.setPrompt("> ")
      rl.on("line", (text) => Queue.unsafeOffer(inbox, { _tag: "line", text }))
      rl.on("SIGINT", () => Queue.unsafeOffer(inbox, { _tag: "sigint" }))
      rl.on("close", () => Queue.unsafeOffer(inbox, { _tag: "eof" }))
      return rl
    }),
    (rl) => Effect.sync(() => rl.close())
  )

const chat = (o: ChatFlags, http: string) =>
  Effect.gen(function* () {
    const token = yield* resolveToken(o)
    const client = yield* makeHubClient(parseHub(http), token)
    const project = yield* findOrCreateProject(client, o.project)
    const session = yield* openSession(client, project.id, o)
    const tty = process.stdin.isTTY === true && process.stdout.isTTY === true
    const oneShot = Option.isSome(o.prompt)

    const inbox = yield* Queue.unbounded<Input>()
    const ready = yield* Deferred.make<void>()
    yield* client.events.subscribe({ projectId: project.id }).pipe(
      Stream.runForEach((item) =>
        item._tag === "Ready"
          ? Deferred.succeed(ready, undefined)
          : item._tag === "Lagged"
            ? write({ stdout: "", stderr: `(missed ${item.missed} events)\n` })
            : Queue.offer(inbox, { _tag: "event", event: item.event })
      ),
      Effect.forkScoped
    )
    yield* Deferred.await(ready)

    const rl = !oneShot || tty ? Option.some(yield* attachInput(inbox, tty)) : Option.none<readline.Interface>()
    const loop = makeChatLoop({
      client,
      projectId: project.id,
      sessionId: session.id,
      inbox,
      autoApprove: o.yes,
      canAsk: Option.isSome(rl),
      renderer: makeChatRenderer(session.id, { streamText: !oneShot, color: tty && process.env.NO_COLOR === undefined }),
      ask: (question) => Effect.sync(() => process.stderr.write(question))
    })
    yield* loop.answerPending

    if (oneShot) {
      const end = yield* loop.runTurn(o.prompt.value)
      const message = end._tag === "done" ? end.message : undefined
      if (message === undefined || message.status !== "completed") {
        const why = message === undefined ? "the turn did not finish" : `the turn ended ${message.status}${message.error ? `: ${message.error}` : ""}`
        return yield* new CliError({ message: why })
      }
      const history = yield* client.session.get({ projectId: project.id, sessionId: session.id })
      const parts = history.messages.find((m) => m.message.id === message.id)?.parts ?? []
      return yield* write({ stdout: `${answerOf(parts)}\n`, stderr: "" })
    }

    yield* write({
      stdout: "",
      stderr: `kiris chat: project ${project.name}, session ${session.id} (${session.model}). Ctrl-C cancels a turn, twice quits; Ctrl-D quits.\n`
    })
    while (true) {
      if (tty) Option.map(rl, (r) => r.prompt())
      const input = yield* loop.nextCommand
      if (input._tag !== "line") return
      const text = input.text.trim()
      if (text === "") continue
      if (text === "/exit" || text === "/quit") return
      const end = yield* loop.runTurn(text)
      if (end._tag === "quit") return
    }
  })

export const chatCommand = Command.make("chat", chatOptions, (o) =>
  Effect.flatMap(resolveHttp(o.hubHttp), (http) => chat(o, http).pipe(Effect.scoped, reportErrors(http)))
).pipe(Command.withDescription("Talk to an agent: stream its answers, see its tool calls, answer its permission requests"))
