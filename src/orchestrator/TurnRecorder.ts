import { SqlClient } from "@effect/sql"
import type { TextStreamPart, ToolSet } from "ai"
import { Clock, Deferred, Effect, FiberId, Option } from "effect"
import { newId } from "../auth/Crypto.js"
import type { EventBody } from "../domain/Event.js"
import type { PartId, ProjectId } from "../domain/Ids.js"
import { Message, type MessageStatus, Part, type PartData, Usage } from "../domain/Session.js"
import type { EventBus } from "../events/EventBus.js"
import { costOf } from "../llm/Prices.js"
import { errorText } from "../llm/StreamParts.js"
import type { SessionRepo } from "../session/SessionRepo.js"

type StreamPart = TextStreamPart<ToolSet>
type Tool = Extract<PartData, { _tag: "tool" }>

interface Usageish {
  readonly inputTokens: number | undefined
  readonly outputTokens: number | undefined
  readonly inputTokenDetails?: { readonly cacheReadTokens: number | undefined }
  readonly outputTokenDetails?: { readonly reasoningTokens: number | undefined }
  readonly raw?: unknown
}

/**
 * AI SDK usage as ours. `cost`: the provider's own figure when it reports one (e.g. OpenRouter's
 * `usage.cost`), else the `model`'s price (src/llm/Prices.ts), else `null` (unknown).
 */
export const toUsage = (u: Usageish, model?: string | null): Usage => {
  const raw = u.raw as { cost?: unknown } | undefined
  const tokens = {
    inputTokens: u.inputTokens ?? 0,
    outputTokens: u.outputTokens ?? 0,
    reasoningTokens: u.outputTokenDetails?.reasoningTokens ?? 0,
    cachedTokens: u.inputTokenDetails?.cacheReadTokens ?? 0
  }
  return Usage.make({ ...tokens, cost: typeof raw?.cost === "number" ? raw.cost : costOf(model, tokens) })
}

const isFailedOutput = (output: unknown): output is { ok: false; error: string } =>
  typeof output === "object" && output !== null && (output as { ok?: unknown }).ok === false

export interface TurnRecorder {
  readonly messageId: Message["id"]
  /** Applies one stream part to the in-memory turn (no IO). */
  readonly apply: (part: StreamPart) => void
  /**
   * Publishes the events of what was applied since the last flush, in order. When they are only
   * streaming deltas and the new parts they go into, they go out at once, nothing written (see
   * `EventBus.publishStreamed`); otherwise what changed (streamed parts included) is written in one
   * transaction with them.
   */
  readonly flush: Effect.Effect<void, never, SqlClient.SqlClient>
  /** Writes the parts streamed into since they were last written, publishing nothing (a safety net while a long part streams). */
  readonly checkpoint: Effect.Effect<void, never, SqlClient.SqlClient>
  /**
   * Sets the final status (open tool calls become errors) and flushes; `finishReason` replaces the
   * model's (e.g. `max-steps`).
   */
  readonly finish: (status: MessageStatus, error?: string, finishReason?: string) => Effect.Effect<Message, never, SqlClient.SqlClient>
  /** The error a stream `error` part reported, if any. */
  readonly streamError: () => string | undefined
  /** How many steps (model calls) the turn started so far. */
  readonly steps: () => number
  /** The finish reason the model reported last (of the turn, else of its last step), if any. */
  readonly finishReason: () => string | null
  /** The text of the last step that wrote any: the turn's answer. */
  readonly answer: () => string
  /**
   * Waits until the call with this id is stored and its part published, so that what a tool does
   * next (e.g. a permission request) never reaches clients before the call it belongs to.
   */
  readonly recorded: (toolCallId: string) => Effect.Effect<void>
}

/**
 * Why a turn that ran without error still did not answer: the step limit cut its tool loop short
 * (the model was calling tools when its last allowed step ended). Undefined when it answered.
 */
export const stepLimitError = (recorder: TurnRecorder, maxSteps: number): string | undefined =>
  recorder.steps() >= maxSteps && recorder.finishReason() === "tool-calls"
    ? `stopped after ${recorder.steps()} steps (agentMaxSteps) while the model was still calling tools`
    : undefined

/**
 * The state of one assistant message while its turn streams: its parts keyed by the stream's ids,
 * the parts changed since the last flush, and the events to publish with them. Every model delta
 * is its own `PartDelta` event; a part's text is written when the part ends (its `PartUpdated`),
 * with the next other change, or at a `checkpoint` — never on a delta's way to clients.
 */
export const makeTurnRecorder = (deps: {
  readonly repo: SessionRepo
  readonly bus: EventBus
  readonly projectId: ProjectId
  readonly message: Message
}): TurnRecorder => {
  let message = deps.message
  let messageDirty = true
  const parts: Array<Part> = []
  const dirty = new Set<number>()
  /** Whether a part changed (other than by deltas) since the last flush. */
  let updated = false
  /** Events of parts added since the last flush that hold nothing yet (a step's start, an empty text, a pending tool call). */
  const opening = new Set<EventBody>()
  /** Parts whose text grew by deltas since they were last written. */
  const streamed = new Set<number>()
  /** Text appended to a part by deltas since its `Part` was last rebuilt (see `settle`). */
  const grown = new Map<number, string>()
  let events: Array<EventBody> = [{ _tag: "MessageUpdated", message }]
  const byStreamId = new Map<string, number>()
  const byCallId = new Map<string, number>()
  const stepOf: Array<number> = []
  let step = 0
  let streamError: string | undefined

  const emit = (event: EventBody) => events.push(event)
  const touchMessage = (m: Message) => {
    message = m
    messageDirty = true
    emit({ _tag: "MessageUpdated", message })
  }
  const add = (data: PartData) => {
    const part = Part.make({ id: newId("prt") as PartId, sessionId: message.sessionId, messageId: message.id, index: parts.length, data })
    parts.push(part)
    stepOf.push(step)
    dirty.add(part.index)
    const event: EventBody = { _tag: "PartUpdated", part }
    if (
      data._tag === "step-start" ||
      ((data._tag === "text" || data._tag === "reasoning") && data.text === "") ||
      (data._tag === "tool" && data.status === "pending")
    ) {
      opening.add(event)
    }
    emit(event)
    return part.index
  }
  /** The part at `index` with the text deltas added to it so far. */
  const settle = (index: number): Part | undefined => {
    const part = parts[index]
    const extra = grown.get(index)
    if (part === undefined || extra === undefined) return part
    grown.delete(index)
    const d = part.data
    const data =
      d._tag === "text" || d._tag === "reasoning"
        ? { ...d, text: d.text + extra }
        : d._tag === "tool" && typeof d.input === "string"
          ? { ...d, input: d.input + extra }
          : d
    parts[index] = Part.make({ ...part, data }, true)
    return parts[index]
  }
  const settleAll = () => {
    for (const index of [...grown.keys()]) settle(index)
  }
  const update = (index: number, data: PartData) => {
    const prev = settle(index)
    if (prev === undefined) return
    parts[index] = Part.make({ ...prev, data }, true)
    dirty.add(index)
    updated = true
    emit({ _tag: "PartUpdated", part: parts[index]! })
  }
  const appendText = (index: number | undefined, delta: string) => {
    const part = index === undefined ? undefined : parts[index]
    if (part === undefined || delta === "") return
    const d = part.data
    if (!(d._tag === "text" || d._tag === "reasoning" || (d._tag === "tool" && typeof d.input === "string"))) return
    // the Part is rebuilt once, when it is next read (`settle`), not for every delta
    grown.set(part.index, (grown.get(part.index) ?? "") + delta)
    streamed.add(part.index)
    emit({ _tag: "PartDelta", sessionId: part.sessionId, messageId: part.messageId, partId: part.id, delta })
  }
  const toolAt = (callId: string, toolName: string): number => {
    const known = byCallId.get(callId)
    if (known !== undefined) return known
    const index = add({ _tag: "tool", callId, tool: toolName, status: "pending", input: "", output: null, error: null })
    byCallId.set(callId, index)
    return index
  }
  const setTool = (index: number, patch: Partial<Omit<Tool, "_tag">>) => {
    const d = settle(index)?.data
    if (d?._tag === "tool") update(index, { ...d, ...patch })
  }

  const apply = (p: StreamPart) => {
    switch (p.type) {
      case "start-step":
        step += 1
        byStreamId.clear()
        add({ _tag: "step-start" })
        break
      case "finish-step":
        add({ _tag: "step-finish", finishReason: p.finishReason, usage: toUsage(p.usage, message.model) })
        touchMessage(Message.make({ ...message, usage: Usage.add(message.usage, toUsage(p.usage, message.model)), finishReason: p.finishReason }))
        break
      case "text-start":
        byStreamId.set(`t:${p.id}`, add({ _tag: "text", text: "" }))
        break
      case "reasoning-start":
        byStreamId.set(`r:${p.id}`, add({ _tag: "reasoning", text: "" }))
        break
      case "text-delta":
        if (!byStreamId.has(`t:${p.id}`)) byStreamId.set(`t:${p.id}`, add({ _tag: "text", text: "" }))
        appendText(byStreamId.get(`t:${p.id}`), p.text)
        break
      case "reasoning-delta":
        if (!byStreamId.has(`r:${p.id}`)) byStreamId.set(`r:${p.id}`, add({ _tag: "reasoning", text: "" }))
        appendText(byStreamId.get(`r:${p.id}`), p.text)
        break
      case "text-end":
      case "reasoning-end": {
        const index = byStreamId.get(`${p.type === "text-end" ? "t" : "r"}:${p.id}`)
        const ended = index === undefined ? undefined : settle(index)
        if (ended !== undefined) update(ended.index, ended.data)
        break
      }
      case "tool-input-start":
        toolAt(p.id, p.toolName)
        break
      case "tool-input-delta":
        appendText(byCallId.get(p.id), p.delta)
        break
      case "tool-call":
        setTool(toolAt(p.toolCallId, p.toolName), {
          input: p.input ?? {},
          status: p.invalid === true ? "error" : "running",
          error: p.invalid === true ? errorText(p.error) : null
        })
        break
      case "tool-result":
        setTool(toolAt(p.toolCallId, p.toolName), {
          status: isFailedOutput(p.output) ? "error" : "completed",
          output: p.output ?? null,
          error: isFailedOutput(p.output) ? p.output.error : null
        })
        break
      case "tool-error":
        setTool(toolAt(p.toolCallId, p.toolName), { status: "error", error: errorText(p.error) })
        break
      case "tool-output-denied":
        setTool(toolAt(p.toolCallId, p.toolName), { status: "error", error: "the tool call was denied" })
        break
      case "file":
        add({ _tag: "file", mediaType: p.file.mediaType, name: null, url: `data:${p.file.mediaType};base64,${p.file.base64}` })
        break
      case "error":
        streamError = errorText(p.error)
        break
      case "finish":
        touchMessage(Message.make({ ...message, finishReason: p.finishReason }))
        break
      default:
        break
    }
  }

  /** Tool calls a tool run waits to see stored, by call id (see `recorded`). */
  const callWaiters = new Map<string, Deferred.Deferred<void>>()
  const waiterOf = (callId: string) => {
    let waiter = callWaiters.get(callId)
    if (waiter === undefined) {
      waiter = Deferred.unsafeMake<void>(FiberId.none)
      callWaiters.set(callId, waiter)
    }
    return waiter
  }
  /** Calls stored by a flush: the stream's `tool-call` part (its input complete) was applied. */
  const storedCalls = (changed: ReadonlyArray<Part>) =>
    Effect.forEach(
      changed,
      (p) => (p.data._tag === "tool" && p.data.status !== "pending" ? Deferred.succeed(waiterOf(p.data.callId), undefined) : Effect.void),
      { discard: true }
    )

  // One flush at a time, never cut in half: what it took from the buffers is written and published.
  const flushLock = Effect.unsafeMakeSemaphore(1)
  const partsAt = (indexes: Iterable<number>) =>
    [...indexes]
      .sort((a, b) => a - b)
      .flatMap((i) => {
        const part = settle(i)
        return part ? [part] : []
      })
  const flush = Effect.suspend(() => {
    if (!messageDirty && dirty.size === 0 && events.length === 0) return Effect.void
    const toPublish = events
    events = []
    if (!messageDirty && !updated && toPublish.every((e) => e._tag === "PartDelta" || opening.has(e))) {
      // Deltas, and new parts that only begin what they bring: live at once, written later.
      for (const i of dirty) streamed.add(i)
      dirty.clear()
      opening.clear()
      return deps.bus.publishStreamed(deps.projectId, toPublish)
    }
    opening.clear()
    updated = false
    for (const i of streamed) dirty.add(i)
    const changed = partsAt(dirty)
    const toWrite = messageDirty ? Option.some(message) : Option.none()
    dirty.clear()
    streamed.clear()
    messageDirty = false
    // one transaction: the parts and the events' log rows commit together
    return Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql.withTransaction(Effect.zipRight(deps.repo.writeBatch(toWrite, changed), deps.bus.publishAll(deps.projectId, toPublish)))
    ).pipe(Effect.orDie, Effect.zipRight(storedCalls(changed)))
  }).pipe(Effect.uninterruptible, flushLock.withPermits(1))

  const checkpoint = Effect.suspend(() => {
    if (streamed.size === 0) return Effect.void
    const changed = partsAt(streamed)
    streamed.clear()
    return deps.repo.writeBatch(Option.none(), changed)
  }).pipe(Effect.uninterruptible, flushLock.withPermits(1))

  const finish = (status: MessageStatus, error?: string, finishReason?: string) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const reason = error ?? (status === "cancelled" ? "the turn was cancelled" : "the turn ended before the tool call finished")
      settleAll()
      parts.forEach((p, i) => {
        if (p.data._tag === "tool" && (p.data.status === "pending" || p.data.status === "running")) {
          setTool(i, { status: "error", error: reason })
        }
      })
      touchMessage(Message.make({ ...message, status, error: error ?? null, finishReason: finishReason ?? message.finishReason, completedAt: now }))
      return Effect.as(flush, message)
    })

  const answer = () => {
    settleAll()
    const texts = parts.flatMap((p, i) => (p.data._tag === "text" && p.data.text !== "" ? [{ step: stepOf[i] ?? 0, text: p.data.text }] : []))
    const lastStep = texts[texts.length - 1]?.step
    return texts
      .filter((t) => t.step === lastStep)
      .map((t) => t.text)
      .join("")
  }

  const recorded = (toolCallId: string) => Deferred.await(waiterOf(toolCallId))

  return {
    messageId: message.id,
    apply,
    flush,
    checkpoint,
    finish,
    streamError: () => streamError,
    steps: () => step,
    finishReason: () => message.finishReason,
    answer,
    recorded
  }
}
