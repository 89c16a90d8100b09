import { createAnthropic } from "@ai-sdk/anthropic"
import { createOpenAI } from "@ai-sdk/openai"
import { createOpenAICompatible } from "@ai-sdk/openai-compatible"
import type { LanguageModel } from "ai"
import { Config, Effect, Option, Redacted } from "effect"
import { ModelError } from "../domain/Llm.js"
import { defaultModelTimeouts, type ModelTimeouts, timedFetch } from "./TimedFetch.js"

/**
 * Turns a `provider:model` string into an AI SDK language model. Providers: `openai`
 * (OPENAI_API_KEY, optional OPENAI_BASE_URL), `anthropic` (ANTHROPIC_API_KEY, optional
 * ANTHROPIC_BASE_URL) and `openai-compatible` (KIRIS_OPENAI_COMPATIBLE_BASE_URL, optional
 * KIRIS_OPENAI_COMPATIBLE_API_KEY), e.g. a local Ollama or vLLM. KIRIS_MODEL is the default model.
 * Settings are read once, through effect/Config; a missing one is reported when a model needs it.
 * Every model's HTTP calls go through `timedFetch`, so a silent server fails the call instead of
 * holding it open (see ModelTimeouts).
 */

export const ModelSettings = Config.all({
  defaultModel: Config.option(Config.string("KIRIS_MODEL")),
  openaiApiKey: Config.option(Config.redacted("OPENAI_API_KEY")),
  openaiBaseUrl: Config.option(Config.string("OPENAI_BASE_URL")),
  anthropicApiKey: Config.option(Config.redacted("ANTHROPIC_API_KEY")),
  anthropicBaseUrl: Config.option(Config.string("ANTHROPIC_BASE_URL")),
  compatibleBaseUrl: Config.option(Config.string("KIRIS_OPENAI_COMPATIBLE_BASE_URL")),
  compatibleApiKey: Config.option(Config.redacted("KIRIS_OPENAI_COMPATIBLE_API_KEY")),
  maxRetries: Config.integer("KIRIS_LLM_MAX_RETRIES").pipe(Config.withDefault(2))
})
export type ModelSettings = Config.Config.Success<typeof ModelSettings>

export const providers = ["openai", "anthropic", "openai-compatible"] as const

export interface ResolvedModel {
  /** The normalized `provider:model` string. */
  readonly id: string
  readonly model: LanguageModel
}

const nonEmpty = (o: Option.Option<string>) => Option.filter(o, (s) => s.trim() !== "")
const secret = (o: Option.Option<Redacted.Redacted<string>>) => nonEmpty(Option.map(o, Redacted.value))

/** Pure resolution, for callers holding settings themselves. */
export const resolveWith = (
  settings: ModelSettings,
  modelString: string | undefined,
  timeouts: ModelTimeouts = defaultModelTimeouts
): Effect.Effect<ResolvedModel, ModelError> =>
  Effect.gen(function* () {
    const given = modelString?.trim() || Option.getOrUndefined(nonEmpty(settings.defaultModel))
    if (given === undefined) {
      return yield* new ModelError({
        model: "",
        reason: "no model given: pass one as provider:model (e.g. openai:gpt-4o-mini) or set KIRIS_MODEL"
      })
    }
    const colon = given.indexOf(":")
    const provider = colon > 0 ? given.slice(0, colon) : ""
    const name = colon > 0 ? given.slice(colon + 1).trim() : ""
    const fail = (reason: string) => new ModelError({ model: given, reason })
    if (provider === "" || name === "") {
      return yield* fail(`expected provider:model with provider one of ${providers.join(", ")} (e.g. openai:gpt-4o-mini)`)
    }
    const id = `${provider}:${name}`
    const fetch = timedFetch(id, timeouts)
    switch (provider) {
      case "openai": {
        const apiKey = secret(settings.openaiApiKey)
        if (Option.isNone(apiKey)) return yield* fail("OPENAI_API_KEY is not set; set it to use openai models")
        const baseURL = Option.getOrUndefined(nonEmpty(settings.openaiBaseUrl))
        const openai = createOpenAI({ apiKey: apiKey.value, fetch, ...(baseURL === undefined ? {} : { baseURL }) })
        return { id, model: openai.chat(name) }
      }
      case "anthropic": {
        const apiKey = secret(settings.anthropicApiKey)
        if (Option.isNone(apiKey)) return yield* fail("ANTHROPIC_API_KEY is not set; set it to use anthropic models")
        const baseURL = Option.getOrUndefined(nonEmpty(settings.anthropicBaseUrl))
        const anthropic = createAnthropic({ apiKey: apiKey.value, fetch, ...(baseURL === undefined ? {} : { baseURL }) })
        return { id, model: anthropic(name) }
      }
      case "openai-compatible": {
        const baseURL = nonEmpty(settings.compatibleBaseUrl)
        if (Option.isNone(baseURL)) {
          return yield* fail(
            "KIRIS_OPENAI_COMPATIBLE_BASE_URL is not set; set it to the server's OpenAI-compatible endpoint (e.g. http://127.0.0.1:11434/v1)"
          )
        }
        const apiKey = Option.getOrUndefined(secret(settings.compatibleApiKey))
        const compatible = createOpenAICompatible({
          name: "openai-compatible",
          baseURL: baseURL.value,
          includeUsage: true,
          fetch,
          ...(apiKey === undefined ? {} : { apiKey })
        })
        return { id, model: compatible.chatModel(name) }
      }
      default:
        return yield* fail(`unknown provider "${provider}"; use one of ${providers.join(", ")}`)
    }
  })

export class Models extends Effect.Service<Models>()("kiris/Models", {
  effect: Effect.gen(function* () {
    const settings = yield* ModelSettings.pipe(Effect.orDie)
    /** `timeouts` default to `defaultModelTimeouts`; the hub passes its configured ones. */
    const resolve = Effect.fn("Models.resolve")((modelString?: string, timeouts?: ModelTimeouts) => resolveWith(settings, modelString, timeouts))
    return {
      resolve,
      defaultModel: Option.getOrUndefined(settings.defaultModel),
      /** How often the AI SDK retries a failed call (KIRIS_LLM_MAX_RETRIES, default 2). */
      maxRetries: settings.maxRetries
    } as const
  })
}) {}
