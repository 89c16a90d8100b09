import { Deferred, Duration, Effect, Queue } from "effect"
import * as net from "node:net"

export interface KirosuReply {
  readonly id: unknown
  // Wire JSON of any shape: the tests assert it field by field.
  readonly result: Record<string, any> | null
  readonly error: { readonly message: string } | null
}

/**
 * A raw Kirosu protocol client over node:net for tests: `send` writes bytes as given, `line` reads
 * the next reply line (raw text), `call` sends one request and returns its decoded reply.
 */
export const kirosuConnect = (port: number, options: { readonly key?: string } = {}) =>
  Effect.gen(function* () {
    const lines = yield* Queue.unbounded<string>()
    const closed = yield* Deferred.make<void>()
    const socket = yield* Effect.acquireRelease(
      Effect.async<net.Socket, Error>((resume) => {
        const s = net.connect({ port, host: "127.0.0.1" }, () => resume(Effect.succeed(s)))
        s.once("error", (e) => resume(Effect.fail(e)))
      }),
      (s) => Effect.sync(() => s.destroy())
    )
    let buffer = ""
    socket.setEncoding("utf8")
    socket.on("data", (chunk: string) => {
      buffer += chunk
      for (let nl = buffer.indexOf("\n"); nl !== -1; nl = buffer.indexOf("\n")) {
        Queue.unsafeOffer(lines, buffer.slice(0, nl))
        buffer = buffer.slice(nl + 1)
      }
    })
    socket.on("error", () => {})
    socket.on("close", () => Deferred.unsafeDone(closed, Effect.void))

    let nextId = 0
    const send = (text: string) =>
      Effect.async<void, Error>((resume) => {
        socket.write(text, (err) => resume(err ? Effect.fail(err) : Effect.void))
      })
    const line = Queue.take(lines).pipe(
      Effect.timeoutFail({ duration: Duration.seconds(10), onTimeout: () => new Error("no reply line within 10s") })
    )
    const reply = Effect.map(line, (text) => JSON.parse(text) as KirosuReply)
    const request = (method: string, params: Record<string, unknown> = {}) => {
      const id = `r${++nextId}`
      const withKey = options.key === undefined ? params : { ...params, auth_token: options.key }
      return { id, text: JSON.stringify({ id, method, params: withKey }) + "\n" }
    }
    const call = (method: string, params: Record<string, unknown> = {}) =>
      Effect.gen(function* () {
        const req = request(method, params)
        yield* send(req.text)
        const r = yield* reply
        if (r.id !== req.id) return yield* Effect.dieMessage(`reply id ${String(r.id)} does not match ${req.id}`)
        return r
      })
    /** Like `call`, but fails the test when the reply is an error. */
    const ok = (method: string, params: Record<string, unknown> = {}) =>
      Effect.flatMap(call(method, params), (r) =>
        r.error === null && r.result !== null ? Effect.succeed(r.result) : Effect.dieMessage(`${method} failed: ${r.error?.message}`)
      )
    return {
      socket,
      send,
      line,
      reply,
      request,
      call,
      ok,
      closed: Deferred.await(closed),
      buffered: Queue.size(lines),
      end: Effect.sync(() => void socket.end())
    } as const
  })

export type KirosuTestClient = Effect.Effect.Success<ReturnType<typeof kirosuConnect>>

/** The exact keys, in order, of a Kirosu Task and Stats object. */
export const taskKeys = [
  "task_id",
  "prompt",
  "system_prompt",
  "type",
  "status",
  "created_at",
  "updated_at",
  "leased_until",
  "worker_id",
  "result",
  "error"
]
export const statsKeys = ["queued", "leased", "done", "failed", "total_tasks", "completed_last_hour", "avg_completion_time_sec", "error_rate_percent"]
