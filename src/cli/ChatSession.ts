import type { RpcClientError } from "@effect/rpc/RpcClientError"
import { Effect, Option, Queue } from "effect"
import type { HubRpcClient } from "../client/HubClient.js"
import type { DomainEvent } from "../domain/Event.js"
import type { MessageId, ProjectId, SessionId } from "../domain/Ids.js"
import type { PermissionReply, PermissionRequest } from "../domain/Permission.js"
import type { MessageWithParts, PromptResult, QueuedPrompt, SessionHistory } from "../domain/Session.js"
import { answerOf, makeChatRenderer, type Output } from "./ChatRender.js"
import { type ChatLink, isTransportError, type LinkInput } from "./ChatLink.js"
import { CliError } from "./ClientOptions.js"

/** What the chat loop reacts to, in arrival order: hub events (and a lost connection), typed lines, Ctrl-C, end of input. */
export type Input = LinkInput | { readonly _tag: "line"; readonly text: string } | { readonly _tag: "sigint" } | { readonly _tag: "eof" }

export interface ChatContext {
  readonly link: ChatLink
  readonly projectId: ProjectId
  readonly sessionId: SessionId
  readonly inbox: Queue.Queue<Input>
  /** Approve every permission request (`--yes`). */
  readonly autoApprove: boolean
  /** Whether typed lines can answer permission requests. */
  readonly canAsk: boolean
  readonly renderer: ReturnType<typeof makeChatRenderer>
  readonly ask: (question: string) => Effect.Effect<void>
}

export const write = (out: Output) =>
  Effect.sync(() => {
    if (out.stdout !== "") process.stdout.write(out.stdout)
    if (out.stderr !== "") process.stderr.write(out.stderr)
  })

/**
 * How a turn the chat waited for ended: `done` with the assistant message that answered the
 * prompt this chat sent (finished, in any status); `unanswered` when the turn ended before an
 * assistant message was written; `quit` when the user pressed Ctrl-C twice.
 */
export type TurnEnd =
  { readonly _tag: "done"; readonly answer: MessageWithParts } | { readonly _tag: "unanswered"; readonly reason: string } | { readonly _tag: "quit" }

/**
 * Where the answer to a prompt stands in the session's history: the assistant message right
 * after the prompt's user message answers it. None while the turn still runs (or has not begun).
 */
export const answerIn = (history: SessionHistory, userMessageId: MessageId): Option.Option<TurnEnd> => {
  const at = history.messages.findIndex((m) => m.message.id === userMessageId)
  if (at < 0) return Option.none()
  const next = history.messages[at + 1]
  if (next?.message.role === "assistant") {
    return next.message.status === "running" ? Option.none() : Option.some({ _tag: "done", answer: next })
  }
  if (next !== undefined || history.session.status === "idle") {
    return Option.some({ _tag: "unanswered", reason: "the turn ended before the agent answered" })
  }
  return Option.none()
}

/** The user message a queued prompt became (when the chat did not see it start): the first with its text since it was queued. */
const userMessageOf = (history: SessionHistory, prompt: QueuedPrompt): MessageId | undefined =>
  history.messages.find((m) => m.message.role === "user" && m.message.createdAt >= prompt.createdAt && answerOf(m.parts) === prompt.text)?.message.id

/**
 * The chat's view of its inbox. Events held back while a permission question waits for its answer
 * are handled afterwards, in order; lines typed (or piped) while a turn runs wait for the next
 * question or the next prompt. A lost connection is re-opened (see `ChatLink`) wherever the chat is.
 */
export const makeChatLoop = (ctx: ChatContext) => {
  const stash: Array<Input> = []
  const typed: Array<Input> = []
  const next = Effect.suspend(() => {
    const stashed = stash.shift()
    return stashed === undefined ? Queue.take(ctx.inbox) : Effect.succeed(stashed)
  })
  const inSession = { projectId: ctx.projectId, sessionId: ctx.sessionId }

  /** Runs a read-only call on the current connection; a transport failure reconnects and runs it again. */
  const call = <A, E>(f: (client: HubRpcClient) => Effect.Effect<A, E>): Effect.Effect<A, Exclude<E, RpcClientError> | ReconnectError> =>
    Effect.suspend(() => f(ctx.link.client())).pipe(Effect.catchIf(isTransportError, () => Effect.zipRight(reconnect, call(f)))) as Effect.Effect<
      A,
      Exclude<E, RpcClientError> | ReconnectError
    >

  const reconnect = Effect.zipRight(write(ctx.renderer.newline()), ctx.link.reconnect)

  const reply = (request: PermissionRequest, answer: PermissionReply, message?: string) =>
    ctx.link
      .client()
      .permission.reply({ ...inSession, requestId: request.id, reply: answer, ...(message === undefined ? {} : { message }) })
      .pipe(
        Effect.asVoid,
        Effect.catchAll((e) => write({ stdout: "", stderr: `permission reply failed: ${e._tag}\n` }))
      )

  /**
   * The next typed line, keeping events that arrive meanwhile for later; none at end of input or on
   * Ctrl-C. `settled` when the request was answered elsewhere or expired while the question waited.
   */
  const readAnswer = (request: PermissionRequest) =>
    Effect.gen(function* () {
      const held: Array<Input> = []
      while (true) {
        const input = typed.shift() ?? (yield* next)
        if (input._tag === "event" || input._tag === "lagged" || input._tag === "lost") {
          held.push(input)
          const body = input._tag === "event" ? input.event.event : undefined
          if (body?._tag === "PermissionReplied" && body.requestId === request.id) {
            stash.unshift(...held)
            return { _tag: "settled", status: body.status } as const
          }
          continue
        }
        stash.unshift(...held)
        return { _tag: "typed", text: input._tag === "line" ? Option.some(input.text.trim().toLowerCase()) : Option.none<string>() } as const
      }
    })

  /** Requests already put to the user: one also comes back as a replayed event after a reconnect. */
  const asked = new Set<string>()

  const answerPermission = (request: PermissionRequest) =>
    Effect.gen(function* () {
      if (asked.has(request.id)) return
      asked.add(request.id)
      yield* write(ctx.renderer.newline())
      if (ctx.autoApprove) {
        yield* write({ stdout: "", stderr: `✓ allowed: ${request.title} (--yes)\n` })
        return yield* reply(request, "once")
      }
      if (!ctx.canAsk) {
        yield* write({ stdout: "", stderr: `✗ refused: ${request.title} (no terminal to ask; pass --yes to approve)\n` })
        return yield* reply(request, "reject", "the user could not be asked for permission")
      }
      yield* ctx.ask(`? ${request.tool}: ${request.title} — allow? [y]es / [n]o / [a]lways: `)
      const answer = yield* readAnswer(request)
      if (answer._tag === "settled") {
        const why = answer.status === "expired" ? "it expired (its turn ended)" : "it was answered elsewhere"
        return yield* write({ stdout: "", stderr: `\n(no longer asking about ${request.title}: ${why})\n` })
      }
      const choice: PermissionReply = Option.match(answer.text, {
        onNone: () => "reject",
        onSome: (a) => (a === "y" || a === "yes" ? "once" : a === "a" || a === "always" ? "always" : "reject")
      })
      yield* reply(request, choice, choice === "reject" ? "the user refused" : undefined)
    })

  const isOurs = (request: PermissionRequest) => ctx.renderer.inTree(request.sessionId)

  /** Renders one event; answers permission requests of this chat's sessions. */
  const handle = (event: DomainEvent) =>
    Effect.gen(function* () {
      const body = event.event
      if (body._tag === "PermissionAsked" && isOurs(body.request)) return yield* answerPermission(body.request)
      yield* write(ctx.renderer.feed(event))
    })

  /** Requests made before this chat connected (e.g. when resuming, or while it was reconnecting). */
  const answerPending = Effect.gen(function* () {
    const pending = yield* call((c) => c.permission.pending(inSession))
    yield* Effect.forEach(
      pending.filter((r) => r.status === "pending"),
      answerPermission,
      { discard: true }
    )
  })

  /** A connection input: reconnects when the current connection was lost; true when it did. */
  const onLink = (input: Input) =>
    input._tag === "lost" && ctx.link.isCurrent(input.generation)
      ? Effect.as(Effect.zipRight(reconnect, answerPending), true)
      : input._tag === "lagged"
        ? Effect.as(write({ stdout: "", stderr: `(missed ${input.missed} events)\n` }), true)
        : Effect.succeed(false)

  /**
   * Sends a prompt and renders until the turn answering it has ended, wherever it ran: at once,
   * or after the prompts queued before it. The outcome is read from the session's history, also
   * after the connection was lost and re-opened (a hub restart ends a running turn `interrupted`).
   * Ctrl-C cancels the turn (or drops the prompt while it waits in the queue); a second one quits.
   * Interrupting this (SIGINT without a terminal) cancels too.
   */
  const runTurn = (text: string) => {
    let userMessageId: MessageId | undefined
    let queued: QueuedPrompt | undefined
    /** Our queued prompt has started: the next user message of the session is its. */
    let startedFromQueue = false
    /** Our queued prompt was removed from the queue before it ran. */
    let dropped = false
    const connection = ctx.link.generation()

    const cancel = Effect.suspend(() =>
      userMessageId === undefined && queued !== undefined
        ? ctx.link.client().session.dequeue({ ...inSession, promptId: queued.id })
        : ctx.link.client().session.cancel(inSession)
    ).pipe(Effect.ignore)

    /** Reads the history for the turn's outcome; none while it still runs. */
    const check = Effect.gen(function* () {
      if (dropped) return Option.some<TurnEnd>({ _tag: "unanswered", reason: "the prompt was removed from the queue before it ran" })
      if (userMessageId === undefined && queued !== undefined) {
        const prompt = queued
        const waiting = yield* call((c) => c.session.queue(inSession))
        if (waiting.some((p) => p.id === prompt.id)) return Option.none<TurnEnd>()
        const history = yield* call((c) => c.session.get(inSession))
        userMessageId = userMessageOf(history, prompt)
        if (userMessageId === undefined) {
          return history.session.status === "idle"
            ? Option.some<TurnEnd>({ _tag: "unanswered", reason: "the prompt left the queue without running" })
            : Option.none<TurnEnd>()
        }
        return answerIn(history, userMessageId)
      }
      if (userMessageId === undefined) return Option.none<TurnEnd>()
      const id = userMessageId
      const end = answerIn(yield* call((c) => c.session.get(inSession)), id)
      const reconnected = ctx.link.generation() !== connection
      return reconnected && Option.isSome(end) && end.value._tag === "unanswered"
        ? Option.some<TurnEnd>({ _tag: "unanswered", reason: "the turn was interrupted (the hub restarted) before the agent answered" })
        : end
    })

    /** Whether an event may have ended the turn (then the history is read). */
    const track = (event: DomainEvent): boolean => {
      const body = event.event
      switch (body._tag) {
        case "PromptDequeued":
          if (body.promptId !== queued?.id) return false
          if (body.reason === "started") startedFromQueue = true
          else dropped = true
          return dropped
        case "MessageUpdated": {
          const m = body.message
          if (m.sessionId !== ctx.sessionId) return false
          if (m.role === "user" && startedFromQueue && userMessageId === undefined) userMessageId = m.id
          return m.role === "assistant" && m.status !== "running"
        }
        case "SessionStatus":
          return body.sessionId === ctx.sessionId && body.status === "idle"
        default:
          return false
      }
    }

    return Effect.gen(function* () {
      const sent: PromptResult = yield* ctx.link
        .client()
        .session.prompt({ ...inSession, text })
        .pipe(
          Effect.catchIf(isTransportError, () =>
            Effect.zipRight(reconnect, new CliError({ message: "lost the hub while sending the prompt; it may not have been received" }))
          )
        )
      if (sent._tag === "Queued") {
        queued = sent.prompt
        yield* write({ stdout: "", stderr: "… a turn is running in this session; the prompt waits in its queue\n" })
      } else userMessageId = sent.messageId
      let interrupts = 0
      while (true) {
        const input = yield* next
        if (input._tag === "sigint") {
          interrupts += 1
          if (interrupts > 1) return { _tag: "quit" } as TurnEnd
          yield* write(ctx.renderer.newline())
          yield* write({ stdout: "", stderr: "^C cancelling the turn (press Ctrl-C again to quit)\n" })
          yield* cancel
          continue
        }
        if (input._tag === "line" || input._tag === "eof") {
          typed.push(input)
          continue
        }
        let ended = yield* onLink(input)
        if (input._tag === "event") {
          yield* handle(input.event)
          ended = track(input.event)
        }
        if (!ended) continue
        const end = yield* check
        if (Option.isSome(end)) return end.value
      }
    }).pipe(Effect.onInterrupt(() => cancel))
  }

  /** Takes the next input while idle, rendering events (other clients' turns) as they come. */
  const nextCommand = Effect.gen(function* () {
    while (true) {
      const input = typed.shift() ?? (yield* next)
      if (input._tag === "event") yield* handle(input.event)
      else if (input._tag === "lost" || input._tag === "lagged") yield* onLink(input)
      else return input
    }
  })

  return { runTurn, nextCommand, answerPending, call }
}

type ReconnectError = Effect.Effect.Error<ChatLink["reconnect"]>
