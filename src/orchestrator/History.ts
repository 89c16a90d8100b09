import type { AssistantContent, ModelMessage, ToolContent, ToolResultPart } from "ai"
import type { MessageWithParts, PartData } from "../domain/Session.js"

type ToolData = Extract<PartData, { _tag: "tool" }>
type JsonValue = null | string | number | boolean | ReadonlyArray<JsonValue> | { readonly [k: string]: JsonValue }

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** A tool's stored input: the parsed object, or the raw streamed text when the call never completed. */
const toolInput = (input: unknown): unknown => {
  if (typeof input !== "string") return input ?? {}
  try {
    return JSON.parse(input)
  } catch {
    return {}
  }
}

/** What the model sees as a tool's result; mirrors the ToolRegistry's `toModelOutput` for `{ ok, output | error }`. */
const toolOutput = (part: ToolData): ToolResultPart["output"] => {
  if (part.status === "pending" || part.status === "running") {
    return { type: "error-text", value: part.error ?? "the tool call was interrupted before it finished" }
  }
  const out = part.output
  if (isRecord(out) && typeof out.ok === "boolean") {
    if (out.ok && typeof out.output === "string") return { type: "text", value: out.output }
    if (!out.ok && typeof out.error === "string") return { type: "error-text", value: out.error }
  }
  if (part.status === "error") return { type: "error-text", value: part.error ?? "the tool call failed" }
  if (typeof out === "string") return { type: "text", value: out }
  return { type: "json", value: (out ?? null) as JsonValue as never }
}

/** One model step of an assistant message: its text and tool calls, then the results of those calls. */
const stepMessages = (parts: ReadonlyArray<PartData>): Array<ModelMessage> => {
  const content: Exclude<AssistantContent, string> = []
  const results: ToolContent = []
  for (const p of parts) {
    if (p._tag === "text" && p.text !== "") content.push({ type: "text", text: p.text })
    if (p._tag === "tool") {
      content.push({ type: "tool-call", toolCallId: p.callId, toolName: p.tool, input: toolInput(p.input) })
      results.push({ type: "tool-result", toolCallId: p.callId, toolName: p.tool, output: toolOutput(p) })
    }
  }
  const out: Array<ModelMessage> = []
  if (content.length > 0) out.push({ role: "assistant", content })
  if (results.length > 0) out.push({ role: "tool", content: results })
  return out
}

/**
 * Rebuilds the conversation the model sees from stored messages: user prompts, and for each
 * assistant message its steps' text, tool calls and tool results (calls cut short by a cancel or a
 * restart get an error result, since providers reject a call without one). Reasoning is not replayed.
 */
export const toModelMessages = (history: ReadonlyArray<MessageWithParts>): Array<ModelMessage> => {
  const out: Array<ModelMessage> = []
  for (const { message, parts } of history) {
    if (message.role === "user") {
      const text = parts.flatMap((p) => (p.data._tag === "text" ? [p.data.text] : [])).join("\n")
      if (text !== "") out.push({ role: "user", content: text })
      continue
    }
    let step: Array<PartData> = []
    for (const p of parts) {
      if (p.data._tag === "step-start" && step.length > 0) {
        out.push(...stepMessages(step))
        step = []
      }
      step.push(p.data)
    }
    out.push(...stepMessages(step))
  }
  return out
}
