import type { Usage } from "../../domain/Session.js"
import * as K from "./KirisMetrics.js"

/** `provider:model` as its two labels; the provider is empty for a string with no colon. */
const modelLabels = (model: string) => {
  const colon = model.indexOf(":")
  return colon > 0 ? { provider: model.slice(0, colon), model: model.slice(colon + 1) } : { provider: "", model }
}

/**
 * Counts an ended agent turn by outcome (completed, error, cancelled, interrupted, max-steps), and
 * its tokens and cost by provider and model. A turn that used no tokens (its model never answered,
 * e.g. an unknown model string) adds no model series, so only models that ran become labels.
 */
export const recordTurn = (outcome: string, model: string, usage: Usage): void => {
  K.add(K.agentTurns, { outcome }, 1)
  if (usage.inputTokens === 0 && usage.outputTokens === 0) return
  const labels = modelLabels(model)
  K.add(K.modelTokens, { ...labels, direction: "input" }, usage.inputTokens)
  K.add(K.modelTokens, { ...labels, direction: "output" }, usage.outputTokens)
  if (usage.cost !== null && usage.cost > 0) K.add(K.modelCost, labels, usage.cost)
}
