import { APICallError } from "ai"
import { Duration } from "effect"

/** How long a model server may stay silent; 0 (or less) turns a limit off. */
export interface ModelTimeouts {
  /** From sending the request until the first byte of the response body (config `modelFirstByteTimeoutSeconds`). */
  readonly firstByteMs: number
  /** Between two chunks of the response body (config `modelIdleTimeoutSeconds`). */
  readonly idleMs: number
}

export const defaultModelTimeouts: ModelTimeouts = { firstByteMs: 60_000, idleMs: 120_000 }

const describeMs = (ms: number) => Duration.format(Duration.millis(ms))

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e))

/** The connection-level cause of a failed `fetch` (undici puts it in `cause`), e.g. ECONNREFUSED. */
const refusedCause = (e: unknown): Error | undefined => {
  for (let cur: unknown = e, depth = 0; cur instanceof Error && depth < 5; cur = cur.cause, depth++) {
    if ((cur as NodeJS.ErrnoException).code === "ECONNREFUSED") return cur
  }
  return undefined
}

const urlOf = (input: Parameters<typeof fetch>[0]) => (typeof input === "string" ? input : input instanceof URL ? input.href : input.url)

/**
 * Rejects with `onTimeout()` when `promise` has not settled within `ms`; `ms <= 0` waits forever.
 * `onTimeout` runs (and may abort the request) before the rejection is seen.
 */
const within = <A>(promise: Promise<A>, ms: number, onTimeout: () => Error): Promise<A> => {
  if (ms <= 0) return promise
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Whether a provider request asks for a streamed answer (`"stream": true` in its JSON body). */
const isStreamed = (body: unknown): boolean => {
  if (typeof body !== "string" || !body.includes('"stream"')) return false
  try {
    const parsed: unknown = JSON.parse(body)
    return typeof parsed === "object" && parsed !== null && (parsed as { stream?: unknown }).stream === true
  } catch {
    return false
  }
}

/** A refused connection as a non-retryable error naming the URL; other failures unchanged. */
const refusal = (label: string, url: string, e: unknown): unknown => {
  const refused = refusedCause(e)
  if (refused === undefined) return e
  return new APICallError({
    message: `${label}: cannot connect to ${url} (${messageOf(refused)})`,
    url,
    requestBodyValues: undefined,
    // No `cause`: the provider would find the ECONNREFUSED in it and make the error retryable.
    isRetryable: false
  })
}

/**
 * A `fetch` for AI SDK providers that never waits on a silent model server forever. A streamed
 * request must produce the first byte of its response body within `firstByteMs`, and every later
 * chunk within `idleMs` of the one before; otherwise the HTTP request is aborted and the call fails
 * with an error naming `label` (the `provider:model`) and the limit. A first-byte timeout happens
 * before `fetch` resolves, so the AI SDK retries it like any transient failure (`maxRetries`); an
 * idle timeout fails the response body mid-stream, like a dropped connection. Requests that are
 * not streamed are left alone (their server is silent until the whole answer is ready). A refused
 * connection fails at once, without retries, naming the URL.
 */
export const timedFetch =
  (label: string, timeouts: ModelTimeouts, base: typeof fetch = globalThis.fetch): typeof fetch =>
  async (input, init) => {
    const url = urlOf(input)
    if (!isStreamed(init?.body)) {
      return base(input, init).catch((e: unknown) => {
        throw refusal(label, url, e)
      })
    }
    const controller = new AbortController()
    const outer = init?.signal ?? undefined
    const forward = () => controller.abort(outer?.reason)
    if (outer?.aborted) forward()
    else outer?.addEventListener("abort", forward, { once: true })
    const release = () => outer?.removeEventListener("abort", forward)
    const fail = (error: Error) => {
      controller.abort(error)
      release()
      return error
    }
    const firstByteTimeout = () =>
      fail(
        new APICallError({
          message: `${label} did not start answering within ${describeMs(timeouts.firstByteMs)} (modelFirstByteTimeoutSeconds)`,
          url,
          requestBodyValues: undefined,
          isRetryable: true
        })
      )
    const idleTimeout = () =>
      fail(
        new APICallError({
          message: `${label} sent no data for ${describeMs(timeouts.idleMs)} (modelIdleTimeoutSeconds)`,
          url,
          requestBodyValues: undefined,
          isRetryable: true
        })
      )

    // One deadline for the status line, the headers and the first body chunk together.
    let firstByteTimer: ReturnType<typeof setTimeout> | undefined
    const firstByteDeadline = new Promise<never>((_, reject) => {
      if (timeouts.firstByteMs > 0) firstByteTimer = setTimeout(() => reject(firstByteTimeout()), timeouts.firstByteMs)
    })
    const beforeFirstByte = <A>(p: Promise<A>) => Promise.race([p, firstByteDeadline])

    let response: Response
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined
    let first: Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>["read"]>> | undefined
    try {
      response = await beforeFirstByte(base(input, { ...init, signal: controller.signal }))
      if (response.body !== null) {
        reader = response.body.getReader()
        first = await beforeFirstByte(reader.read())
      }
    } catch (e) {
      release()
      throw refusal(label, url, e)
    } finally {
      clearTimeout(firstByteTimer)
    }
    if (reader === undefined || first === undefined || first.done) {
      release()
      const init = { status: response.status, statusText: response.statusText, headers: response.headers }
      return reader === undefined ? response : new Response(null, init)
    }

    const source = reader
    const head = first.value
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(head)
      },
      async pull(c) {
        try {
          const next = await within(source.read(), timeouts.idleMs, idleTimeout)
          if (next.done) {
            release()
            c.close()
          } else {
            c.enqueue(next.value)
          }
        } catch (e) {
          release()
          c.error(e)
        }
      },
      cancel(reason) {
        controller.abort(reason)
        release()
        return source.cancel(reason)
      }
    })
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers })
  }
