import { Effect, Schema } from "effect"

/**
 * What a model costs, in USD per million tokens: `input` (prompt tokens not read from a cache),
 * `output` (completion tokens, reasoning included) and `cachedInput` (prompt tokens read from the
 * provider's cache; the `input` price when not given).
 */
export class ModelPrice extends Schema.Class<ModelPrice>("ModelPrice")({
  input: Schema.Number.pipe(Schema.nonNegative()),
  output: Schema.Number.pipe(Schema.nonNegative()),
  cachedInput: Schema.optional(Schema.Number.pipe(Schema.nonNegative()))
}) {}

/** The `modelPrices` setting: `provider:model` (or a prefix of the model id) → its price. */
export const ModelPrices = Schema.Record({ key: Schema.String, value: ModelPrice })
export type ModelPrices = typeof ModelPrices.Type

interface Entry {
  readonly provider: string
  /** A model id, or the start of ids it covers (dated snapshots, `-latest` aliases). */
  readonly model: string
  readonly price: ModelPrice
}

const p = (input: number, output: number, cachedInput?: number) =>
  ModelPrice.make(cachedInput === undefined ? { input, output } : { input, output, cachedInput })

/**
 * The built-in table: list prices of current OpenAI and Anthropic models (standard tier, USD per
 * million tokens). Providers change prices; `modelPrices` in the config overrides or extends it.
 * Anthropic cache writes are counted at the input price.
 */
export const builtinPrices: ReadonlyArray<Entry> = [
  // OpenAI
  { provider: "openai", model: "gpt-5", price: p(1.25, 10, 0.125) },
  { provider: "openai", model: "gpt-5.1", price: p(1.25, 10, 0.125) },
  { provider: "openai", model: "gpt-5-mini", price: p(0.25, 2, 0.025) },
  { provider: "openai", model: "gpt-5-nano", price: p(0.05, 0.4, 0.005) },
  { provider: "openai", model: "gpt-5-pro", price: p(15, 120) },
  { provider: "openai", model: "gpt-4.1", price: p(2, 8, 0.5) },
  { provider: "openai", model: "gpt-4.1-mini", price: p(0.4, 1.6, 0.1) },
  { provider: "openai", model: "gpt-4.1-nano", price: p(0.1, 0.4, 0.025) },
  { provider: "openai", model: "gpt-4o", price: p(2.5, 10, 1.25) },
  { provider: "openai", model: "gpt-4o-mini", price: p(0.15, 0.6, 0.075) },
  { provider: "openai", model: "gpt-4-turbo", price: p(10, 30) },
  { provider: "openai", model: "gpt-4", price: p(30, 60) },
  { provider: "openai", model: "gpt-3.5-turbo", price: p(0.5, 1.5) },
  { provider: "openai", model: "o1", price: p(15, 60, 7.5) },
  { provider: "openai", model: "o1-mini", price: p(1.1, 4.4, 0.55) },
  { provider: "openai", model: "o1-pro", price: p(150, 600) },
  { provider: "openai", model: "o3", price: p(2, 8, 0.5) },
  { provider: "openai", model: "o3-mini", price: p(1.1, 4.4, 0.55) },
  { provider: "openai", model: "o3-pro", price: p(20, 80) },
  { provider: "openai", model: "o4-mini", price: p(1.1, 4.4, 0.275) },
  // Anthropic
  { provider: "anthropic", model: "claude-opus-4-5", price: p(5, 25, 0.5) },
  { provider: "anthropic", model: "claude-opus-4-1", price: p(15, 75, 1.5) },
  { provider: "anthropic", model: "claude-opus-4", price: p(15, 75, 1.5) },
  { provider: "anthropic", model: "claude-sonnet-4-5", price: p(3, 15, 0.3) },
  { provider: "anthropic", model: "claude-sonnet-4", price: p(3, 15, 0.3) },
  { provider: "anthropic", model: "claude-haiku-4-5", price: p(1, 5, 0.1) },
  { provider: "anthropic", model: "claude-3-7-sonnet", price: p(3, 15, 0.3) },
  { provider: "anthropic", model: "claude-3-5-sonnet", price: p(3, 15, 0.3) },
  { provider: "anthropic", model: "claude-3-5-haiku", price: p(0.8, 4, 0.08) },
  { provider: "anthropic", model: "claude-3-opus", price: p(15, 75, 1.5) },
  { provider: "anthropic", model: "claude-3-haiku", price: p(0.25, 1.25, 0.03) }
]

const split = (model: string) => {
  const colon = model.indexOf(":")
  return colon > 0 ? { provider: model.slice(0, colon), name: model.slice(colon + 1) } : undefined
}

/** `name` is `model` itself or one of its variants (`gpt-4o-2024-08-06`, `claude-3-5-haiku-latest`). */
const covers = (entry: string, name: string) => name === entry || name.startsWith(`${entry}-`)

/**
 * The price of a `provider:model`: among the configured and the built-in entries of its provider,
 * the one with the longest matching model id wins, a configured one on a tie (so configuring
 * `openai:gpt-4o` leaves `openai:gpt-4o-mini` at its built-in price); `undefined` when none matches.
 */
export const priceOf = (model: string, overrides: ModelPrices = {}): ModelPrice | undefined => {
  const id = split(model)
  if (id === undefined) return undefined
  const configured: Array<Entry> = Object.entries(overrides).flatMap(([key, price]) => {
    const k = split(key)
    return k === undefined ? [] : [{ provider: k.provider, model: k.name, price }]
  })
  return [...configured, ...builtinPrices]
    .filter((e) => e.provider === id.provider && covers(e.model, id.name))
    .reduce<Entry | undefined>((best, e) => (best === undefined || e.model.length > best.model.length ? e : best), undefined)?.price
}

export interface Tokens {
  /** All prompt tokens, cached ones included. */
  readonly inputTokens: number
  readonly outputTokens: number
  /** Prompt tokens read from the provider's cache. */
  readonly cachedTokens: number
}

/** USD for the tokens at `price`. */
export const costAt = (price: ModelPrice, t: Tokens): number => {
  const cached = Math.min(t.cachedTokens, t.inputTokens)
  return ((t.inputTokens - cached) * price.input + cached * (price.cachedInput ?? price.input) + t.outputTokens * price.output) / 1_000_000
}

/**
 * The prices in force: the built-in table plus the hub's `modelPrices`. Set when the hub starts
 * (see `installPrices`) and read where usage is converted, which happens outside any service.
 */
let active: ModelPrices = {}

/** USD for a `provider:model`'s tokens, or `null` when its price is unknown. */
export const costOf = (model: string | null | undefined, t: Tokens): number | null => {
  if (model === null || model === undefined) return null
  const price = priceOf(model, active)
  return price === undefined ? null : costAt(price, t)
}

/**
 * Makes `overrides` (the hub's `modelPrices`) the prices `costOf` uses, for the lifetime of the
 * scope; the previous ones come back when it closes. One hub per process is the normal case; hubs
 * run side by side in one process share the last one's table.
 */
export const installPrices = (overrides: ModelPrices) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const previous = active
      active = overrides
      return previous
    }),
    (previous) =>
      Effect.sync(() => {
        if (active === overrides) active = previous
      })
  ).pipe(Effect.asVoid)
