import { Command, Options } from "@effect/cli"
import { Config, Duration, Effect, Option, Queue } from "effect"
import * as readline from "node:readline"
import { type HubRpcClient, parseHub } from "../client/HubClient.js"
import type { ProjectId, SessionId } from "../domain/Ids.js"
import type { SessionHistory } from "../domain/Session.js"
import { makeChatLink } from "./ChatLink.js"
import { answerOf, makeChatRenderer, outcomeText, toolLine, usageLine } from "./ChatRender.js"
import { type Input, makeChatLoop, type TurnEnd, write } from "./ChatSession.js"
import { CliError, clientOptions, reportErrors, resolveToken } from "./ClientOptions.js"

/** `kiris chat`: a terminal client of one agent session over the hub's WebSocket RPC. */

export const DEFAULT_HTTP = "http://127.0.0.1:7420"
export const DEFAULT_RECONNECT_SECONDS = 60

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
  yes: Options.boolean("yes").pipe(Options.withDescription("Approve every permission request")),
  reconnectTimeout: Options.integer("reconnect-timeout").pipe(
    Options.withPseudoName("SECONDS"),
    Options.withDescription(
      `How long to keep trying to reconnect after losing the hub before giving up (exit 1); default $KIRIS_RECONNECT_TIMEOUT, else ${DEFAULT_RECONNECT_SECONDS}`
    ),
    Options.optional
  )
}

type ChatFlags = Command.Command.ParseConfig<typeof chatOptions>

const resolveHttp = (flag: Option.Option<string>) =>
  Option.match(flag, {
    onSome: Effect.succeed,
    onNone: () =>
      Config.string("KIRIS_HTTP").pipe(
        Config.withDefault(DEFAULT_HTTP),
        Effect.orElseSucceed(() => DEFAULT_HTTP)
      )
  })

const resolveReconnectTimeout = (flag: Option.Option<number>) =>
  Option.match(flag, {
    onSome: Effect.succeed,
    onNone: () =>
      Config.integer("KIRIS_RECONNECT_TIMEOUT").pipe(
        Config.withDefault(DEFAULT_RECONNECT_SECONDS),
        Effect.orElseSucceed(() => DEFAULT_RECONNECT_SECONDS)
      )
  }).pipe(Effect.map((s) => Duration.seconds(Math.max(1, s))))

const findOrCreateProject = (client: HubRpcClient, nameOrId: string) =>
  Effect.gen(function* () {
    const found = (yield* client.project.list()).find((p) => p.id === nameOrId || p.name === nameOrId)
    if (found) return found
    if (nameOrId.startsWith("prj_")) return yield* new CliError({ message: `no project ${nameOrId}` })
    return yield* client.project.create({ name: nameOrId, description: "" })
  })

/** The history of a resumed session, on stderr (stdout carries only answers). */
const showHistory = (history: SessionHistory) =>
  Effect.forEach(
    history.messages,
    ({ message, parts }) => {
      if (message.role === "user") return write({ stdout: "", stderr: `> ${answerOf(parts)}\n` })
      const lines = parts.flatMap((p) => (p.data._tag === "tool" ? [toolLine(p.data)] : []))
      const answer = answerOf(parts)
      if (answer !== "") lines.push(answer)
      return write({ stdout: "", stderr: lines.map((l) => `${l}\n`).join("") })
    },
    { discard: true }
  )

/** A line about the session's last turn when it did not end well (e.g. cut off by a hub restart). */
const showLastTurn = (history: SessionHistory) => {
  const last = history.messages.findLast((m) => m.message.role === "assistant")?.message
  if (last === undefined) return Effect.void
  if (last.status === "running") return write({ stdout: "", stderr: "… a turn is running in this session\n" })
  const outcome = outcomeText(last)
  return outcome === undefined ? Effect.void : write({ stdout: "", stderr: `note: the earlier turn ${last.id} did not complete: ${outcome}\n` })
}

const openSession = (client: HubRpcClient, projectId: ProjectId, o: ChatFlags, oneShot: boolean) =>
  Option.match(o.session, {
    onSome: (id) =>
      Effect.gen(function* () {
        const history = yield* client.session.get({ projectId, sessionId: id as SessionId })
        if (!oneShot) yield* showHistory(history)
        yield* showLastTurn(history)
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

/** The one-shot outcome: the answer on stdout, tokens and cost on stderr; any turn that did not complete fails. */
const reportOneShot = (end: TurnEnd) =>
  Effect.gen(function* () {
    if (end._tag === "quit") return yield* new CliError({ message: "quit before the turn ended" })
    if (end._tag === "unanswered") return yield* new CliError({ message: end.reason })
    const { message, parts } = end.answer
    yield* write({ stdout: "", stderr: `${usageLine(message.usage)}\n` })
    const outcome = outcomeText(message)
    if (outcome !== undefined) return yield* new CliError({ message: outcome })
    yield* write({ stdout: `${answerOf(parts)}\n`, stderr: "" })
  })

const chat = (o: ChatFlags, http: string) =>
  Effect.gen(function* () {
    const token = yield* resolveToken(o)
    const reconnectTimeout = yield* resolveReconnectTimeout(o.reconnectTimeout)
    const inbox = yield* Queue.unbounded<Input>()
    const link = yield* makeChatLink({
      target: parseHub(http),
      token,
      reconnectTimeout,
      deliver: (input) => Queue.offer(inbox, input),
      status: (line) => write({ stdout: "", stderr: `${line}\n` })
    })
    const tty = process.stdin.isTTY === true && process.stdout.isTTY === true
    const oneShot = Option.isSome(o.prompt)
    const project = yield* findOrCreateProject(link.client(), o.project)
    const session = yield* openSession(link.client(), project.id, o, oneShot)
    yield* link.watch(project.id)

    const rl = !oneShot || tty ? Option.some(yield* attachInput(inbox, tty)) : Option.none<readline.Interface>()
    const renderer = makeChatRenderer(session.id, {
      streamText: !oneShot,
      color: tty && process.env.NO_COLOR === undefined,
      turnOutcomes: !oneShot
    })
    const loop = makeChatLoop({
      link,
      projectId: project.id,
      sessionId: session.id,
      inbox,
      autoApprove: o.yes,
      canAsk: Option.isSome(rl),
      renderer,
      ask: (question) => Effect.sync(() => process.stderr.write(question))
    })
    yield* loop.answerPending

    if (oneShot) {
      yield* write({ stdout: "", stderr: `kiris chat: project ${project.name}, session ${session.id}\n` })
      return yield* reportOneShot(yield* loop.runTurn(o.prompt.value))
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
      yield* write(renderer.newline())
      if (end._tag === "unanswered") yield* write({ stdout: "", stderr: `${end.reason}\n` })
      else {
        const { message } = end.answer
        const outcome = outcomeText(message)
        const shown = outcome === undefined || renderer.reported(message.id) ? "" : `${outcome}\n`
        yield* write({ stdout: "", stderr: `${shown}${usageLine(message.usage)}\n` })
      }
    }
  })

export const chatCommand = Command.make("chat", chatOptions, (o) =>
  Effect.flatMap(resolveHttp(o.hubHttp), (http) => chat(o, http).pipe(Effect.scoped, reportErrors(http)))
).pipe(Command.withDescription("Talk to an agent: stream its answers, see its tool calls, answer its permission requests"))
