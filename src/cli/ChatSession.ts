import { Effect, Option, Queue } from "effect"
import type { HubRpcClient } from "../client/HubClient.js"
import type { DomainEvent } from "../domain/Event.js"
import type { ProjectId, SessionId } from "../domain/Ids.js"
import type { PermissionReply, PermissionRequest } from "../domain/Permission.js"
import type { Message } from "../domain/Session.js"
import { makeChatRenderer, type Output } from "./ChatRender.js"

/** What the chat loop reacts to, in arrival order: hub events, typed lines, Ctrl-C, end of input. */
export type Input =
  | { readonly _tag: "event"; readonly event: DomainEvent }
  | { readonly _tag: "line"; readonly text: string }
  | { readonly _tag: "sigint" }
  | { readonly _tag: "eof" }

export interface ChatContext {
  readonly client: HubRpcClient
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

/** How a turn the chat waited for ended; `quit` when the user pressed Ctrl-C twice. */
export type TurnEnd = { readonly _tag: "done"; readonly message: Message | undefined } | { readonly _tag: "quit" }

/**
 * The chat's view of its inbox. Events held back while a permission question waits for its answer
 * are handled afterwards, in order; lines typed (or piped) while a turn runs wait for the next
 * question or the next prompt.
 */
export const makeChatLoop = (ctx: ChatContext) => {
  const stash: Array<Input> = []
  const typed: Array<Input> = []
  const next = Effect.suspend(() => {
    const stashed = stash.shift()
    return stashed === undefined ? Queue.take(ctx.inbox) : Effect.succeed(stashed)
  })

  const reply = (request: PermissionRequest, answer: PermissionReply, message?: string) =>
    ctx.client.permission
      .reply({ projectId: ctx.projectId, requestId: request.id, reply: answer, ...(message === undefined ? {} : { message }) })
      .pipe(
        Effect.asVoid,
        Effect.catchAll((e) => write({ stdout: "", stderr: `permission reply failed: ${e._tag}\n` }))
      )

  /** The next typed line, keeping events that arrive meanwhile for later; none at end of input or on Ctrl-C. */
  const readAnswer = Effect.gen(function* () {
    const held: Array<Input> = []
    while (true) {
      const input = typed.shift() ?? (yield* next)
      if (input._tag === "event") {
        held.push(input)
        continue
      }
      stash.unshift(...held)
      return input._tag === "line" ? Option.some(input.text.trim().toLowerCase()) : Option.none<string>()
    }
  })

  const answerPermission = (request: PermissionRequest) =>
    Effect.gen(function* () {
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
      const answer = yield* readAnswer
      const choice: PermissionReply = Option.match(answer, {
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

  /** Requests made before this chat connected (e.g. when resuming). */
  const answerPending = Effect.gen(function* () {
    const pending = yield* ctx.client.permission.pending({ projectId: ctx.projectId, sessionId: ctx.sessionId })
    yield* Effect.forEach(pending.filter((r) => r.status === "pending"), answerPermission, { discard: true })
  })

  const cancel = ctx.client.session.cancel({ projectId: ctx.projectId, sessionId: ctx.sessionId }).pipe(Effect.ignore)

  /**
   * Sends a prompt and renders until the session is idle again after a turn of it ran. Ctrl-C
   * cancels the turn; a second one quits. Interrupting this (SIGINT without a terminal) cancels too.
   */
  const runTurn = (text: string) =>
    Effect.gen(function* () {
      yield* ctx.client.session.prompt({ projectId: ctx.projectId, sessionId: ctx.sessionId, text })
      let started = false
      let interrupts = 0
      let last: Message | undefined
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
        if (input._tag !== "event") {
          typed.push(input)
          continue
        }
        yield* handle(input.event)
        const body = input.event.event
        if (body._tag === "MessageUpdated" && body.message.sessionId === ctx.sessionId && body.message.role === "assistant") {
          if (body.message.status === "running") started = true
          else last = body.message
        }
        if (body._tag === "SessionStatus" && body.sessionId === ctx.sessionId && body.status === "idle" && started) {
          return { _tag: "done", message: last } as TurnEnd
        }
      }
    }).pipe(Effect.onInterrupt(() => cancel))

  /** Takes the next input while idle, rendering events (other clients' turns) as they come. */
  const nextCommand = Effect.gen(function* () {
    while (true) {
      const input = typed.shift() ?? (yield* next)
      if (input._tag === "event") yield* handle(input.event)
      else return input
    }
  })

  return { runTurn, nextCommand, answerPending }
}
