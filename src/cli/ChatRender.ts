import type { DomainEvent } from "../domain/Event.js"
import type { SessionId } from "../domain/Ids.js"
import type { Message, PartData, Usage } from "../domain/Session.js"

/** Turns a session's events into terminal output for `kiris chat`: plain functions over a small state. */

type ToolData = Extract<PartData, { _tag: "tool" }>

export interface Output {
  readonly stdout: string
  readonly stderr: string
}

export interface RenderOptions {
  /** Stream the agent's text to stdout (interactive); when false only tool lines and errors are shown (on stderr). */
  readonly streamText: boolean
  readonly color: boolean
  /** Print a line when a turn of the session ends other than `completed` (the one-shot mode reports its own turn itself). */
  readonly turnOutcomes?: boolean
}

const firstLine = (s: string, max = 80) => {
  const line = s.trim().split("\n")[0] ?? ""
  return line.length > max ? `${line.slice(0, max - 1)}…` : line
}

const str = (u: unknown): string | undefined => (typeof u === "string" && u !== "" ? u : undefined)

/** The argument that best names what a tool call touched. */
const toolSubject = (t: ToolData): string => {
  const input = (typeof t.input === "object" && t.input !== null ? t.input : {}) as Record<string, unknown>
  const subject = str(input.path) ?? str(input.command) ?? str(input.pattern) ?? str(input.prompt) ?? str(input.description)
  return subject === undefined ? "" : ` ${firstLine(subject, 60)}`
}

const toolResult = (t: ToolData): string => {
  if (t.status === "error") return `✗ ${firstLine(t.error ?? "failed")}`
  const out = t.output as { ok?: unknown; output?: unknown; metadata?: { lines?: unknown } } | null
  if (out !== null && typeof out === "object" && out.ok === false) return `✗ ${firstLine(String((out as { error?: unknown }).error))}`
  const text = typeof out?.output === "string" ? out.output : typeof t.output === "string" ? t.output : JSON.stringify(t.output)
  const lines = typeof out?.metadata?.lines === "number" ? out.metadata.lines : text.split("\n").filter((l) => l !== "").length
  return lines <= 1 && text.length <= 60 ? (text.trim() === "" ? "done" : text.trim()) : `${lines} lines`
}

/** One line per finished tool call: `⚙ read src/x.ts → 120 lines`. */
export const toolLine = (t: ToolData) => `⚙ ${t.tool}${toolSubject(t)} → ${toolResult(t)}`

/** The answer of a finished turn: the text of its last step that wrote any. */
export const answerOf = (parts: ReadonlyArray<{ readonly data: PartData }>): string => {
  let step = 0
  const texts: Array<{ step: number; text: string }> = []
  for (const p of parts) {
    if (p.data._tag === "step-start") step += 1
    if (p.data._tag === "text" && p.data.text !== "") texts.push({ step, text: p.data.text })
  }
  const last = texts[texts.length - 1]?.step
  return texts
    .filter((t) => t.step === last)
    .map((t) => t.text)
    .join("")
}

const count = (n: number) => n.toLocaleString("en-US")

/** The cost of a turn in USD; a model without a price has no cost (`cost unknown`, never `$0`). */
export const costText = (cost: number | null | undefined): string =>
  typeof cost !== "number" || !Number.isFinite(cost) ? "cost unknown" : `cost $${cost.toFixed(cost !== 0 && cost < 0.01 ? 4 : 2)}`

/** One line of a turn's tokens and cost: `tokens 1,200 in (800 cached) · 56 out (20 reasoning) · cost $0.0042`. */
export const usageLine = (
  usage: Pick<Usage, "inputTokens" | "outputTokens" | "reasoningTokens" | "cachedTokens"> & {
    readonly cost: number | null | undefined
  }
): string => {
  const input = `${count(usage.inputTokens)} in${usage.cachedTokens > 0 ? ` (${count(usage.cachedTokens)} cached)` : ""}`
  const output = `${count(usage.outputTokens)} out${usage.reasoningTokens > 0 ? ` (${count(usage.reasoningTokens)} reasoning)` : ""}`
  return `tokens ${input} · ${output} · ${costText(usage.cost)}`
}

/** Why a turn did not complete, in words; undefined for a completed turn. */
export const outcomeText = (m: Pick<Message, "status" | "error" | "finishReason">): string | undefined => {
  switch (m.status) {
    case "completed":
    case "running":
      return undefined
    case "error":
      return `the turn failed${m.finishReason !== null && m.finishReason !== "error" ? ` (${m.finishReason})` : ""}: ${m.error ?? "unknown error"}`
    case "cancelled":
      return "the turn was cancelled"
    case "interrupted":
      return "the turn was interrupted (the hub restarted)"
  }
}

/**
 * The renderer of one chat: which sessions belong to it (the session and its sub-agents), which
 * parts are text, what it printed last. `feed` returns what to print for one event.
 */
export const makeChatRenderer = (root: SessionId, options: RenderOptions) => {
  const sessions = new Set<string>([root])
  const partKinds = new Map<string, PartData["_tag"]>()
  const announcedTools = new Set<string>()
  const reportedTurns = new Set<string>()
  let atLineStart = true
  let lastDeltaPart: string | undefined
  const dim = (s: string) => (options.color ? `\x1b[2m${s}\x1b[0m` : s)
  const red = (s: string) => (options.color ? `\x1b[31m${s}\x1b[0m` : s)

  const line = (s: string, toStderr = !options.streamText): Output => {
    const prefix = atLineStart ? "" : "\n"
    atLineStart = true
    return toStderr ? { stdout: "", stderr: `${prefix}${s}\n` } : { stdout: `${prefix}${s}\n`, stderr: "" }
  }
  const none: Output = { stdout: "", stderr: "" }

  const indent = (sessionId: string) => (sessionId === root ? "" : "  │ ")

  const onMessage = (m: Message): Output => {
    if (m.role !== "assistant" || m.status === "running" || m.sessionId !== root) return none
    if (m.status === "completed" || options.turnOutcomes === false) {
      if (atLineStart) return none
      atLineStart = true
      return options.streamText ? { stdout: "\n", stderr: "" } : none
    }
    reportedTurns.add(m.id)
    const why = m.status === "error" ? `error: ${m.error ?? "the turn failed"}` : `(turn ${m.status})`
    return line(red(why), true)
  }

  const feed = (event: DomainEvent): Output => {
    const e = event.event
    switch (e._tag) {
      case "SessionCreated":
        if (e.session.parentId !== null && sessions.has(e.session.parentId)) sessions.add(e.session.id)
        return none
      case "PartUpdated": {
        const { part } = e
        if (!sessions.has(part.sessionId)) return none
        partKinds.set(part.id, part.data._tag)
        if (part.data._tag === "tool" && (part.data.status === "completed" || part.data.status === "error")) {
          if (announcedTools.has(part.id)) return none
          announcedTools.add(part.id)
          return line(dim(`${indent(part.sessionId)}${toolLine(part.data)}`))
        }
        return none
      }
      case "PartDelta": {
        if (e.sessionId !== root || !options.streamText) return none
        const kind = partKinds.get(e.partId)
        if (kind !== "text" && kind !== "reasoning") return none
        const prefix = lastDeltaPart !== e.partId && !atLineStart ? "\n" : ""
        lastDeltaPart = e.partId
        atLineStart = e.delta.endsWith("\n")
        return { stdout: prefix + (kind === "reasoning" ? dim(e.delta) : e.delta), stderr: "" }
      }
      case "MessageUpdated":
        return onMessage(e.message)
      default:
        return none
    }
  }

  return {
    feed,
    inTree: (sessionId: string) => sessions.has(sessionId),
    /** Whether the end of this assistant message was already shown (it is not when the chat missed its event). */
    reported: (messageId: string) => reportedTurns.has(messageId),
    /** Starts the next output on a fresh line. */
    newline: (): Output => {
      if (atLineStart) return none
      atLineStart = true
      return options.streamText ? { stdout: "\n", stderr: "" } : { stdout: "", stderr: "\n" }
    }
  }
}
