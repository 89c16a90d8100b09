/**
 * A scriptable OpenAI-compatible chat completions server for tests.
 *
 * Speaks what `@ai-sdk/openai-compatible` expects (see STACK.md §7):
 * `POST /v1/chat/completions`, SSE `data: {chunk}\n\n` lines ending with a
 * usage chunk (`choices: []`) and `data: [DONE]`, or a plain `chat.completion`
 * JSON body when the request has `stream: false` / no `stream` (generateText).
 *
 * Reply selection for each request: the first matching `scriptFor` route,
 * else the next queued `script` reply (FIFO), else the default reply.
 *
 * Note: the AI SDK retries retryable failures (`httpError` 429/5xx, a socket
 * destroyed before the response headers) up to `maxRetries` (default 2), and
 * every retry consumes a reply. Pass `maxRetries: 0` to avoid surprises.
 *
 * Failure modes for timeout tests: `stall` (no response, or headers only), `stallAfter` (some text,
 * then silence), `hang` (one chunk, then silence); `endlessToolCalls` never stops calling tools.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { Effect } from "effect"
import type { Scope } from "effect"

// ---------------------------------------------------------------------------
// Request body types
// ---------------------------------------------------------------------------

export interface ChatContentPart {
  readonly type: string
  readonly text?: string
  readonly [key: string]: unknown
}

export interface ChatToolCall {
  readonly id: string
  readonly type: "function"
  readonly function: { readonly name: string; readonly arguments: string }
}

export interface ChatMessage {
  /** "system" | "user" | "assistant" | "tool" */
  readonly role: string
  readonly content?: string | ReadonlyArray<ChatContentPart> | null
  readonly tool_calls?: ReadonlyArray<ChatToolCall>
  readonly tool_call_id?: string
  readonly reasoning_content?: string
  readonly [key: string]: unknown
}

export interface ChatToolDefinition {
  readonly type: "function"
  readonly function: {
    readonly name: string
    readonly description?: string
    readonly parameters?: unknown
  }
}

export interface ChatRequestBody {
  readonly model: string
  readonly messages: ReadonlyArray<ChatMessage>
  readonly stream?: boolean
  readonly tools?: ReadonlyArray<ChatToolDefinition>
  readonly [key: string]: unknown
}

export interface RecordedRequest {
  readonly body: ChatRequestBody
  readonly headers: http.IncomingHttpHeaders
}

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

/** Overrides the token counts reported in the usage chunk. */
export interface UsageSpec {
  readonly prompt_tokens: number
  readonly completion_tokens: number
}

/** Plain text, optionally preceded by streamed reasoning (`delta.reasoning_content`). */
export interface TextReply {
  readonly text: string
  /** Number of text deltas; default: one delta per word. */
  readonly chunks?: number
  readonly reasoning?: string
  readonly usage?: UsageSpec
}

export interface ToolCallSpec {
  /** Default: `call_<request#>_<index>` */
  readonly id?: string
  readonly name: string
  /** Serialized with JSON.stringify unless it is already a string. */
  readonly args: unknown
}

/** Tool calls (finish_reason "tool_calls"); arguments stream in 2+ fragments. */
export interface ToolCallsReply {
  readonly toolCalls: ReadonlyArray<ToolCallSpec>
  /** Text streamed before the tool calls. */
  readonly text?: string
  readonly reasoning?: string
  readonly usage?: UsageSpec
  /** When given, the stream stops after its first chunk (or its first text chunk) until this settles, then sends the calls. */
  readonly until?: Promise<unknown>
}

/**
 * Streams `errorAfter` as text, then fails:
 * - "destroy" (default): the socket is destroyed mid-stream (network failure).
 * - "chunk": an SSE `{"error":{...}}` chunk is sent, then the stream ends.
 * Non-streaming requests get their socket destroyed before any response.
 */
export interface ErrorAfterReply {
  readonly errorAfter: string
  readonly mode?: "destroy" | "chunk"
  /** Message of the error chunk (mode "chunk"). */
  readonly message?: string
}

/** Text whose every chunk (default: one per word) is delayed by `delayMs`. */
export interface SlowReply {
  readonly slow: {
    readonly text: string
    readonly delayMs: number
    readonly chunks?: number
    /** When given, the stream stops after its first text chunk until this settles. */
    readonly until?: Promise<unknown>
    /** When given, text chunk `index` (from 1) is sent only once `pace(index)` settles (after the delay). */
    readonly pace?: (index: number) => Promise<unknown>
    /** Called right after text chunk `index` (from 0) was written to the response. */
    readonly sent?: (index: number) => void
  }
}

/** Sends headers and one chunk (with `text`, default "") and never finishes. */
export interface HangReply {
  readonly hang: true
  readonly text?: string
}

/**
 * Accepts the request and goes silent without closing the connection (until the client does):
 * - "headers": no response at all, not even the status line.
 * - "body": sends the status line and headers, then nothing.
 */
export interface StallReply {
  readonly stall: "headers" | "body"
}

/** Streams `stallAfter` as text (one chunk per word), then goes silent without closing the connection. */
export interface StallAfterReply {
  readonly stallAfter: string
}

/** Responds with an HTTP error status and an OpenAI-style error body. */
export interface HttpErrorReply {
  readonly httpError: { readonly status: number; readonly message: string }
}

export type StaticReply = TextReply | ToolCallsReply | ErrorAfterReply | SlowReply | HangReply | StallReply | StallAfterReply | HttpErrorReply

/** A reply, or a function computing the reply from the request body. */
export type Reply = StaticReply | ((body: ChatRequestBody) => Reply)

export interface ScriptForOptions {
  /** How many requests this route answers; default 1. Use `Infinity` for a permanent route. */
  readonly times?: number
}

export interface FakeOpenAI {
  /** e.g. `http://127.0.0.1:PORT/v1` */
  readonly baseURL: string
  readonly port: number
  /** Every received chat completion request, in arrival order. */
  readonly requests: ReadonlyArray<RecordedRequest>
  /** Requests whose client connection closed before the reply was finished. */
  readonly closedConnections: number
  /** Chat completion requests being answered now (received, response not yet closed). */
  readonly inFlight: number
  /** The most requests ever answered at once (overlapping model calls). */
  readonly maxInFlight: number
  /** Replies still queued by `script`. */
  readonly pending: number
  /** Resolves on the next early client close (create it before triggering the close). */
  onClosed(): Promise<void>
  /** Resolves once `closedConnections >= n` (race-free alternative to `onClosed`). */
  waitForClosed(n: number): Promise<void>
  /** Resolves once at least `n` requests have been received. */
  waitForRequests(n: number): Promise<void>
  /** Queues replies, consumed one per request (FIFO). */
  script(...replies: ReadonlyArray<Reply>): void
  /** Routes matching requests to `reply` before the FIFO queue is consulted. */
  scriptFor(match: (body: ChatRequestBody) => boolean, reply: Reply, options?: ScriptForOptions): void
  /** Reply used when no route matches and the queue is empty (initially text "ok"). */
  setDefault(reply: Reply): void
  /** Clears queue, routes, recorded requests and counters; restores the default reply. */
  reset(): void
  close(): Promise<void>
}

// ---------------------------------------------------------------------------
// Assertion helpers
// ---------------------------------------------------------------------------

/** Text of a message's content (string, or the joined text parts). */
export const contentText = (message: ChatMessage | undefined): string => {
  const content = message?.content
  if (content == null) return ""
  if (typeof content === "string") return content
  return content.map((part) => (typeof part.text === "string" ? part.text : "")).join("")
}

/** Content of the last `user` message, "" if none. */
export const lastUserText = (body: ChatRequestBody): string => contentText(body.messages.filter((m) => m.role === "user").at(-1))

/** Contents of all `system` messages joined with "\n", "" if none. */
export const systemText = (body: ChatRequestBody): string =>
  body.messages
    .filter((m) => m.role === "system")
    .map(contentText)
    .join("\n")

/** The `role: "tool"` messages of a request. */
export const toolResults = (body: ChatRequestBody): ReadonlyArray<{ readonly tool_call_id: string; readonly content: string }> =>
  body.messages.filter((m) => m.role === "tool").map((m) => ({ tool_call_id: m.tool_call_id ?? "", content: contentText(m) }))

/** Replies with text "echo: <last user message content>". */
export const echoLastUser: Reply = (body) => ({ text: `echo: ${lastUserText(body)}` })

/**
 * Answers every request with one call of `name` (ids stay unique per request): a model that never
 * stops calling tools. Use with `setDefault`.
 */
export const endlessToolCalls =
  (name: string, args: unknown): Reply =>
  () => ({ toolCalls: [{ name, args }] })

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

interface Route {
  readonly match: (body: ChatRequestBody) => boolean
  readonly reply: Reply
  remaining: number
}

type Step =
  | { readonly _tag: "data"; readonly data: unknown }
  | { readonly _tag: "delay"; readonly ms: number }
  | { readonly _tag: "destroy" }
  | { readonly _tag: "hang" }
  | { readonly _tag: "await"; readonly until: Promise<unknown> }
  | { readonly _tag: "awaitLazy"; readonly until: () => Promise<unknown> }
  | { readonly _tag: "call"; readonly f: () => void }

interface Plan {
  readonly reasoning: string
  readonly text: string
  readonly textChunks: ReadonlyArray<string>
  readonly toolCalls: ReadonlyArray<{ readonly id: string; readonly name: string; readonly args: string }>
  readonly finishReason: "stop" | "tool_calls"
  readonly delayMs: number
  readonly ending: "finish" | "destroy" | "errorChunk" | "hang"
  readonly errorMessage: string
  readonly usage: UsageSpec | undefined
  readonly until?: Promise<unknown>
  readonly pace?: (index: number) => Promise<unknown>
  readonly sent?: (index: number) => void
}

const DEFAULT_REPLY: Reply = { text: "ok" }

const estimateTokens = (s: string): number => Math.max(1, Math.ceil(s.length / 4))

/** Split into words (keeping the leading whitespace) or into `n` equal parts. */
const splitText = (text: string, n: number | undefined): ReadonlyArray<string> => {
  if (text.length === 0) return []
  if (n === undefined) return text.match(/\s*\S+|\s+$/g) ?? [text]
  const chars = Array.from(text)
  const count = Math.max(1, Math.min(Math.floor(n), chars.length))
  const size = Math.ceil(chars.length / count)
  const out: Array<string> = []
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(""))
  return out
}

/** Split a string into at least 2 fragments (when it has 2+ characters). */
const fragments = (s: string): ReadonlyArray<string> => {
  if (s.length < 2) return [s]
  const third = Math.max(1, Math.floor(s.length / 3))
  return [s.slice(0, third), s.slice(third, 2 * third), s.slice(2 * third)].filter((x) => x.length > 0)
}

const resolveReply = (reply: Reply, body: ChatRequestBody): StaticReply => {
  let r: Reply = reply
  for (let i = 0; typeof r === "function"; i++) {
    if (i > 100) throw new Error("FakeOpenAI: reply functions nested too deeply")
    r = r(body)
  }
  return r
}

const isChatBody = (u: unknown): u is ChatRequestBody => typeof u === "object" && u !== null && Array.isArray((u as { messages?: unknown }).messages)

export const startFakeOpenAI = async (): Promise<FakeOpenAI> => {
  const requests: Array<RecordedRequest> = []
  let queue: Array<Reply> = []
  let routes: Array<Route> = []
  let defaultReply: Reply = DEFAULT_REPLY
  let closedConnections = 0
  let completionCounter = 0
  let closedWaiters: Array<{ readonly n: number; readonly resolve: () => void }> = []
  let requestWaiters: Array<{ readonly n: number; readonly resolve: () => void }> = []
  const liveResponses = new Set<http.ServerResponse>()
  let shuttingDown = false
  let inFlight = 0
  let maxInFlight = 0

  const notify = (waiters: typeof closedWaiters, count: number): typeof closedWaiters => {
    const remaining: typeof closedWaiters = []
    for (const w of waiters) {
      if (count >= w.n) w.resolve()
      else remaining.push(w)
    }
    return remaining
  }

  const pickReply = (body: ChatRequestBody): Reply => {
    for (const route of routes) {
      if (route.remaining > 0 && route.match(body)) {
        route.remaining -= 1
        if (route.remaining <= 0) routes = routes.filter((r) => r !== route)
        return route.reply
      }
    }
    return queue.shift() ?? defaultReply
  }

  const makePlan = (reply: StaticReply, requestNo: number): Plan => {
    const base = {
      reasoning: "",
      text: "",
      textChunks: [] as ReadonlyArray<string>,
      toolCalls: [] as Plan["toolCalls"],
      finishReason: "stop" as const,
      delayMs: 0,
      ending: "finish" as const,
      errorMessage: "",
      usage: undefined
    }
    if ("httpError" in reply) throw new Error("unreachable: httpError handled earlier")
    if ("stall" in reply) throw new Error("unreachable: stall handled earlier")
    if ("stallAfter" in reply) {
      return { ...base, text: reply.stallAfter, textChunks: splitText(reply.stallAfter, undefined), ending: "hang" }
    }
    if ("hang" in reply) {
      const text = reply.text ?? ""
      return { ...base, text, textChunks: [text], ending: "hang" }
    }
    if ("errorAfter" in reply) {
      return {
        ...base,
        text: reply.errorAfter,
        textChunks: splitText(reply.errorAfter, undefined),
        ending: reply.mode === "chunk" ? "errorChunk" : "destroy",
        errorMessage: reply.message ?? "fake upstream error"
      }
    }
    if ("slow" in reply) {
      return {
        ...base,
        text: reply.slow.text,
        textChunks: splitText(reply.slow.text, reply.slow.chunks),
        delayMs: reply.slow.delayMs,
        ...(reply.slow.until ? { until: reply.slow.until } : {}),
        ...(reply.slow.pace ? { pace: reply.slow.pace } : {}),
        ...(reply.slow.sent ? { sent: reply.slow.sent } : {})
      }
    }
    if ("toolCalls" in reply) {
      const text = reply.text ?? ""
      return {
        ...base,
        reasoning: reply.reasoning ?? "",
        text,
        textChunks: splitText(text, undefined),
        toolCalls: reply.toolCalls.map((tc, i) => ({
          id: tc.id ?? `call_${requestNo}_${i}`,
          name: tc.name,
          args: typeof tc.args === "string" ? tc.args : JSON.stringify(tc.args ?? {})
        })),
        finishReason: "tool_calls",
        usage: reply.usage,
        ...(reply.until ? { until: reply.until } : {})
      }
    }
    return {
      ...base,
      reasoning: reply.reasoning ?? "",
      text: reply.text,
      textChunks: splitText(reply.text, reply.chunks),
      usage: reply.usage
    }
  }

  const usageOf = (plan: Plan, body: ChatRequestBody) => {
    const prompt = plan.usage?.prompt_tokens ?? estimateTokens(JSON.stringify(body.messages))
    const completion =
      plan.usage?.completion_tokens ?? estimateTokens(plan.reasoning + plan.text + plan.toolCalls.map((t) => t.name + t.args).join(""))
    return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
  }

  const streamSteps = (plan: Plan, body: ChatRequestBody, id: string): ReadonlyArray<Step> => {
    const created = Math.floor(Date.now() / 1000)
    const chunk = (delta: Record<string, unknown>, finish_reason: string | null = null): Step => ({
      _tag: "data",
      data: { id, object: "chat.completion.chunk", created, model: body.model, choices: [{ index: 0, delta, finish_reason }] }
    })
    const steps: Array<Step> = []
    const delay = (): void => {
      if (plan.delayMs > 0) steps.push({ _tag: "delay", ms: plan.delayMs })
    }
    let first = true
    const role = (): Record<string, unknown> => {
      if (!first) return {}
      first = false
      return { role: "assistant" }
    }
    for (const r of splitText(plan.reasoning, undefined)) {
      delay()
      steps.push(chunk({ ...role(), content: null, reasoning_content: r }))
    }
    plan.textChunks.forEach((t, i) => {
      delay()
      const { pace, sent } = plan
      if (i > 0 && pace) steps.push({ _tag: "awaitLazy", until: () => pace(i) })
      steps.push(chunk({ ...role(), content: t }))
      if (sent) steps.push({ _tag: "call", f: () => sent(i) })
      if (i === 0 && plan.until) steps.push({ _tag: "await", until: plan.until })
    })
    if (plan.ending === "hang") {
      if (first) steps.push(chunk({ ...role(), content: "" }))
      steps.push({ _tag: "hang" })
      return steps
    }
    if (plan.toolCalls.length > 0 && plan.until && plan.textChunks.length === 0) {
      if (first) steps.push(chunk({ ...role(), content: "" }))
      steps.push({ _tag: "await", until: plan.until })
    }
    if (plan.ending === "destroy") {
      steps.push({ _tag: "destroy" })
      return steps
    }
    if (plan.ending === "errorChunk") {
      steps.push({
        _tag: "data",
        data: { error: { message: plan.errorMessage, type: "server_error", param: null, code: "fake_error" } }
      })
      steps.push({ _tag: "data", data: "[DONE]" })
      return steps
    }
    plan.toolCalls.forEach((tc, index) => {
      delay()
      steps.push(
        chunk({
          ...role(),
          content: null,
          tool_calls: [{ index, id: tc.id, type: "function", function: { name: tc.name, arguments: "" } }]
        })
      )
      for (const fragment of fragments(tc.args)) {
        steps.push(chunk({ tool_calls: [{ index, function: { arguments: fragment } }] }))
      }
    })
    delay()
    steps.push(chunk(first ? { role: "assistant", content: "" } : {}, plan.finishReason))
    steps.push({
      _tag: "data",
      data: { id, object: "chat.completion.chunk", created, model: body.model, choices: [], usage: usageOf(plan, body) }
    })
    steps.push({ _tag: "data", data: "[DONE]" })
    return steps
  }

  const completionJson = (plan: Plan, body: ChatRequestBody, id: string) => ({
    id,
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model: body.model,
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content: plan.toolCalls.length > 0 && plan.text === "" ? null : plan.text,
          ...(plan.reasoning !== "" ? { reasoning_content: plan.reasoning } : {}),
          ...(plan.toolCalls.length > 0
            ? {
                tool_calls: plan.toolCalls.map((tc) => ({
                  id: tc.id,
                  type: "function",
                  function: { name: tc.name, arguments: tc.args }
                }))
              }
            : {})
        },
        finish_reason: plan.finishReason
      }
    ],
    usage: usageOf(plan, body)
  })

  const sendJson = (res: http.ServerResponse, status: number, value: unknown): void => {
    const payload = JSON.stringify(value)
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(payload) })
    res.end(payload)
  }

  const handleCompletion = async (req: http.IncomingMessage, res: http.ServerResponse, raw: string) => {
    let parsed: unknown
    try {
      parsed = JSON.parse(raw)
    } catch {
      sendJson(res, 400, { error: { message: "invalid JSON body", type: "invalid_request_error" } })
      return
    }
    if (!isChatBody(parsed)) {
      sendJson(res, 400, { error: { message: "body.messages must be an array", type: "invalid_request_error" } })
      return
    }
    const body = parsed
    requests.push({ body, headers: req.headers })
    requestWaiters = notify(requestWaiters, requests.length)
    const requestNo = requests.length
    const id = `chatcmpl-fake-${++completionCounter}`

    // Lifecycle: an early close is a close before we ended or deliberately destroyed the response.
    let finished = false
    let selfDestroyed = false
    let onClose: () => void = () => {}
    const closed = new Promise<void>((resolve) => {
      onClose = resolve
    })
    liveResponses.add(res)
    inFlight += 1
    maxInFlight = Math.max(maxInFlight, inFlight)
    res.on("close", () => {
      inFlight -= 1
      liveResponses.delete(res)
      if (!finished && !selfDestroyed && !shuttingDown && !res.writableFinished) {
        closedConnections += 1
        closedWaiters = notify(closedWaiters, closedConnections)
      }
      onClose()
    })
    const isOpen = () => !res.destroyed && !res.writableEnded
    const wait = (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms)
        void closed.then(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    const destroy = () => {
      selfDestroyed = true
      res.destroy()
      req.socket.destroy()
    }
    const end = (fn: () => void) => {
      if (!isOpen()) return
      finished = true
      fn()
    }

    let reply: StaticReply
    try {
      reply = resolveReply(pickReply(body), body)
    } catch (error) {
      end(() => sendJson(res, 500, { error: { message: `FakeOpenAI reply function threw: ${String(error)}`, type: "server_error" } }))
      return
    }

    if ("httpError" in reply) {
      const { status, message } = reply.httpError
      end(() => sendJson(res, status, { error: { message, type: "fake_error", param: null, code: status } }))
      return
    }

    if ("stall" in reply) {
      if (reply.stall === "body") {
        res.writeHead(200, { "content-type": body.stream === true ? "text/event-stream" : "application/json" })
        res.flushHeaders()
      }
      await closed
      return
    }

    const plan = makePlan(reply, requestNo)

    if (body.stream !== true) {
      if (plan.ending === "hang") {
        await closed
        return
      }
      if (plan.ending === "destroy") return destroy()
      if (plan.ending === "errorChunk") {
        end(() => sendJson(res, 500, { error: { message: plan.errorMessage, type: "server_error", code: "fake_error" } }))
        return
      }
      if (plan.delayMs > 0) await wait(plan.delayMs * Math.max(1, plan.textChunks.length))
      end(() => sendJson(res, 200, completionJson(plan, body, id)))
      return
    }

    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" })
    res.flushHeaders()
    for (const step of streamSteps(plan, body, id)) {
      if (!isOpen()) return
      switch (step._tag) {
        case "data":
          res.write(`data: ${typeof step.data === "string" ? step.data : JSON.stringify(step.data)}\n\n`)
          break
        case "delay":
          await wait(step.ms)
          break
        case "await":
          await Promise.race([step.until, closed])
          break
        case "awaitLazy":
          await Promise.race([step.until(), closed])
          break
        case "call":
          step.f()
          break
        case "hang":
          await closed
          return
        case "destroy":
          // let the already written text reach the client first
          await new Promise<void>((resolve) => res.write("", () => resolve()))
          if (isOpen()) destroy()
          return
      }
    }
    end(() => res.end())
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost")
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8")
      if (req.method === "POST" && /\/chat\/completions\/?$/.test(url.pathname)) {
        handleCompletion(req, res, raw).catch((error: unknown) => {
          if (!res.headersSent) sendJson(res, 500, { error: { message: String(error), type: "server_error" } })
          else res.destroy()
        })
      } else if (req.method === "GET" && /\/models\/?$/.test(url.pathname)) {
        sendJson(res, 200, { object: "list", data: [{ id: "fake", object: "model", created: 0, owned_by: "fake" }] })
      } else {
        sendJson(res, 404, { error: { message: `no route ${req.method} ${url.pathname}`, type: "invalid_request_error" } })
      }
    })
  })

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  let closing: Promise<void> | undefined

  const fake: FakeOpenAI = {
    baseURL: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    get closedConnections() {
      return closedConnections
    },
    get pending() {
      return queue.length
    },
    get inFlight() {
      return inFlight
    },
    get maxInFlight() {
      return maxInFlight
    },
    onClosed: () => fake.waitForClosed(closedConnections + 1),
    waitForClosed: (n) =>
      new Promise<void>((resolve) => {
        if (closedConnections >= n) return resolve()
        closedWaiters.push({ n, resolve })
      }),
    waitForRequests: (n) =>
      new Promise<void>((resolve) => {
        if (requests.length >= n) return resolve()
        requestWaiters.push({ n, resolve })
      }),
    script: (...replies) => {
      queue.push(...replies)
    },
    scriptFor: (match, reply, options) => {
      routes.push({ match, reply, remaining: options?.times ?? 1 })
    },
    setDefault: (reply) => {
      defaultReply = reply
    },
    reset: () => {
      queue = []
      routes = []
      defaultReply = DEFAULT_REPLY
      requests.length = 0
      closedConnections = 0
    },
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        shuttingDown = true
        for (const res of liveResponses) res.destroy()
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    }
  }
  return fake
}

/** Scoped fake server: started on acquire, closed when the scope closes. */
export const fakeOpenAI: Effect.Effect<FakeOpenAI, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(() => startFakeOpenAI()),
  (fake) => Effect.promise(() => fake.close())
)
