import type { TextStreamPart, ToolSet } from "ai"
import type { AgentPart } from "../domain/AgentTask.js"

/** One line for an error of the AI SDK or a provider (with its cause when that says more). */
export const errorText = (error: unknown): string => {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? error.cause.message : undefined
    return cause !== undefined && cause !== error.message ? `${error.message}: ${cause}` : error.message
  }
  if (typeof error === "string") return error
  return JSON.stringify(error) ?? String(error)
}

/** An AI SDK stream part as plain JSON for `task.progress`; parts nobody records are dropped. */
export const toAgentPart = (p: TextStreamPart<ToolSet>): AgentPart | undefined => {
  switch (p.type) {
    case "text-start":
    case "text-end":
    case "reasoning-start":
    case "reasoning-end":
      return { type: p.type, id: p.id }
    case "text-delta":
    case "reasoning-delta":
      return { type: p.type, id: p.id, text: p.text }
    case "tool-input-start":
      return { type: p.type, id: p.id, toolName: p.toolName }
    case "tool-input-delta":
      return { type: p.type, id: p.id, delta: p.delta }
    case "tool-call":
      return {
        type: p.type,
        toolCallId: p.toolCallId,
        toolName: p.toolName,
        input: p.input,
        ...(p.invalid ? { invalid: true, error: errorText(p.error) } : {})
      }
    case "tool-result":
      return { type: p.type, toolCallId: p.toolCallId, toolName: p.toolName, output: p.output }
    case "tool-error":
      return { type: p.type, toolCallId: p.toolCallId, toolName: p.toolName, error: errorText(p.error) }
    case "start-step":
      return { type: p.type }
    case "finish-step":
      return {
        type: p.type,
        finishReason: p.finishReason,
        usage: {
          ...(p.usage.inputTokens === undefined ? {} : { inputTokens: p.usage.inputTokens }),
          ...(p.usage.outputTokens === undefined ? {} : { outputTokens: p.usage.outputTokens }),
          inputTokenDetails:
            p.usage.inputTokenDetails.cacheReadTokens === undefined ? {} : { cacheReadTokens: p.usage.inputTokenDetails.cacheReadTokens },
          outputTokenDetails:
            p.usage.outputTokenDetails.reasoningTokens === undefined ? {} : { reasoningTokens: p.usage.outputTokenDetails.reasoningTokens }
        }
      }
    case "finish":
      return { type: p.type, finishReason: p.finishReason }
    case "error":
      return { type: p.type, error: errorText(p.error) }
    default:
      return undefined
  }
}
