import { HttpLayerRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import type { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import { Clock, Effect, Exit, Option, Runtime, Schedule, Scope } from "effect"
import * as crypto from "node:crypto"
import type * as Http from "node:http"
import * as net from "node:net"
import { AccessControl } from "../auth/AccessControl.js"
import { ApiKeys } from "../auth/ApiKeys.js"
import { makeHubClient, type HubTarget } from "../client/HubClient.js"
import { ServerConfig } from "../config/ServerConfig.js"
import { requirementOf } from "../domain/Access.js"
import type { UserId } from "../domain/Ids.js"
import { McpEndpoint } from "../domain/http/McpApi.js"

/**
 * `/mcp` on the hub's HTTP port: MCP over Streamable HTTP with the SDK's transport, one stateful
 * session (`Mcp-Session-Id`) per `initialize`. Each session is a loopback RPC client of this hub
 * carrying the token that created it, so every tool call is checked by the RPC it makes.
 *
 * - Bearer auth with Kiris tokens, checked against the requirement declared in domain/http/McpApi.ts
 *   on every request; a session answers only requests carrying the token that created it.
 * - `Origin`: none, localhost, the hub's own IP address, or one of `mcpAllowedOrigins`; any other is 403.
 * - JSON-RPC batches are refused (a single message per POST); bodies are bounded by `maxFrameBytes`.
 * - Sessions idle for `mcpSessionIdleSeconds` are closed; a user has at most
 *   `mcpMaxSessionsPerCaller` open at once (a new one closes their least recently used idle one;
 *   when all are busy it is refused with 429).
 * The MCP SDK is loaded when the hub starts, never by other commands of the CLI.
 */

interface McpSession {
  readonly id: string
  readonly tokenDigest: Buffer
  readonly userId: UserId
  readonly transport: StreamableHTTPServerTransport
  readonly scope: Scope.CloseableScope
  lastSeen: number
  active: number
  closed: boolean
}

const digest = (s: string) => crypto.createHash("sha256").update(s).digest()

/** A refusal both as a Kiris error (`_tag`, `reason`) and as a JSON-RPC error, for any client reading it. */
const refuse = (status: number, tag: string, reason: string, code: number, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson({ _tag: tag, reason, jsonrpc: "2.0", error: { code, message: reason }, id: null }, { status, headers })

const bearerOf = (authorization: string | undefined) => authorization?.match(/^Bearer\s+(\S+)\s*$/i)?.[1]

const localHosts = new Set(["localhost", "127.0.0.1", "[::1]", "::1"])

/** Whether a browser-sent `Origin` may reach the endpoint (DNS-rebinding and cross-site protection). */
export const originAllowed = (origin: string | undefined, host: string | undefined, extra: ReadonlyArray<string>): boolean => {
  if (origin === undefined) return true
  const trimmed = origin.replace(/\/+$/, "")
  if (extra.includes(trimmed)) return true
  let url: URL
  try {
    url = new URL(trimmed)
  } catch {
    return false
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return false
  if (localHosts.has(url.hostname)) return true
  // The hub's own address, when addressed by IP: a DNS name that matches the Origin is what a
  // DNS-rebinding page sends, so named hosts must be listed in mcpAllowedOrigins.
  return host !== undefined && url.host === host && isIpLiteral(url.hostname)
}

const isIpLiteral = (hostname: string) => net.isIP(hostname.replace(/^\[|\]$/g, "")) !== 0

const readBody = (req: Http.IncomingMessage, limit: number) =>
  Effect.async<string, { readonly status: number; readonly reason: string }>((resume) => {
    const chunks: Array<Buffer> = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        cleanup()
        req.resume()
        resume(Effect.fail({ status: 413, reason: `request body larger than ${limit} bytes` }))
      } else chunks.push(chunk)
    }
    const onEnd = () => {
      cleanup()
      resume(Effect.succeed(Buffer.concat(chunks).toString("utf8")))
    }
    const onError = (e: Error) => {
      cleanup()
      resume(Effect.fail({ status: 400, reason: `unreadable request body: ${e.message}` }))
    }
    const cleanup = () => {
      req.off("data", onData)
      req.off("end", onEnd)
      req.off("error", onError)
    }
    req.on("data", onData)
    req.once("end", onEnd)
    req.once("error", onError)
    return Effect.sync(cleanup)
  })

/** Resolves once the response has been sent in full or its connection closed (SSE streams stay open). */
const responseDone = (res: Http.ServerResponse) =>
  Effect.async<void>((resume) => {
    if (res.writableEnded || res.destroyed) return resume(Effect.void)
    const done = () => resume(Effect.void)
    res.once("close", done)
    res.once("finish", done)
    return Effect.sync(() => {
      res.off("close", done)
      res.off("finish", done)
    })
  })

const loopbackHost = (hostname: string) =>
  hostname === "0.0.0.0" || hostname === "" ? "127.0.0.1" : hostname === "::" ? "[::1]" : hostname.includes(":") ? `[${hostname}]` : hostname

export const McpHttpRoutes = HttpLayerRouter.use((router) =>
  Effect.gen(function* () {
    const config = yield* ServerConfig
    const keys = yield* ApiKeys
    const control = yield* AccessControl
    const http = yield* HttpServer.HttpServer
    const requirement = Option.getOrThrowWith(requirementOf(McpEndpoint.annotations), () => new Error("/mcp declares no access requirement"))
    // the MCP SDK is loaded with the first session, not when the hub starts
    const mcpModules = yield* Effect.cached(
      Effect.promise(() => Promise.all([import("@modelcontextprotocol/sdk/server/streamableHttp.js"), import("./McpServer.js")]))
    )
    const runtime = yield* Effect.runtime<never>()
    const runFork = Runtime.runFork(runtime)

    const address = http.address as HttpServer.TcpAddress
    const target: HubTarget = { transport: "ws", url: `ws://${loopbackHost(address.hostname)}:${address.port}/rpc` }

    const sessions = new Map<string, McpSession>()

    const closeSession = (session: McpSession) =>
      Effect.suspend(() => {
        if (session.closed) return Effect.void
        session.closed = true
        sessions.delete(session.id)
        return Scope.close(session.scope, Exit.void)
      })

    yield* Effect.addFinalizer(() => Effect.forEach([...sessions.values()], closeSession, { discard: true }))

    const idleMs = config.mcpSessionIdleSeconds * 1000
    yield* Effect.map(Clock.currentTimeMillis, (now) => [...sessions.values()].filter((s) => s.active === 0 && now - s.lastSeen > idleMs)).pipe(
      Effect.flatMap((idle) => Effect.forEach(idle, closeSession, { discard: true })),
      Effect.repeat(Schedule.spaced(Math.max(1000, Math.min(60_000, idleMs / 4)))),
      Effect.forkScoped
    )

    /** A new session: a loopback client with the caller's token, an MCP server over it and its transport. */
    const openSession = (token: string, userId: UserId) =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const built = yield* Effect.gen(function* () {
          const [{ StreamableHTTPServerTransport }, { makeMcpServer }] = yield* mcpModules
          const client = yield* makeHubClient(target, token)
          const server = yield* makeMcpServer({ client, log: (line) => Effect.logInfo(line) })
          const holder: { session?: McpSession } = {}
          const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
            sessionIdGenerator: () => crypto.randomUUID(),
            onsessioninitialized: (id) => {
              // Date.now: a callback of the MCP SDK's transport, outside Effect
              const session: McpSession = { id, tokenDigest: digest(token), userId, transport, scope, lastSeen: Date.now(), active: 1, closed: false }
              holder.session = session
              sessions.set(id, session)
            }
          })
          transport.onclose = () => {
            if (holder.session !== undefined) runFork(closeSession(holder.session))
          }
          yield* Effect.promise(() => server.connect(transport))
          return { transport, holder }
        }).pipe(
          Scope.extend(scope),
          Effect.onError(() => Scope.close(scope, Exit.void))
        )
        return { ...built, scope }
      })

    const handle = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const req = NodeHttpServerRequest.toIncomingMessage(request)
      const res = NodeHttpServerRequest.toServerResponse(request)

      if (!originAllowed(req.headers.origin, req.headers.host, config.mcpAllowedOrigins)) {
        return refuse(403, "Forbidden", `origin ${req.headers.origin} is not allowed (see mcpAllowedOrigins)`, -32600)
      }
      const token = bearerOf(req.headers.authorization)
      const caller = yield* keys.authenticate(req.headers.authorization).pipe(
        Effect.tap((principal) => control.check(principal, requirement, undefined)),
        Effect.either
      )
      if (caller._tag === "Left") {
        const e = caller.left
        return e._tag === "Unauthorized"
          ? refuse(401, "Unauthorized", e.reason, -32001, { "www-authenticate": 'Bearer realm="kiris"' })
          : refuse(e._tag === "Forbidden" ? 403 : 404, e._tag, e._tag === "NotFound" ? e.message : e.reason, -32001)
      }
      const principal = caller.right
      if (token === undefined) return refuse(401, "Unauthorized", "missing bearer token", -32001)

      let parsed: unknown = undefined
      if (req.method === "POST") {
        const body = yield* Effect.either(readBody(req, config.maxFrameBytes))
        if (body._tag === "Left") return refuse(body.left.status, "InvalidInput", body.left.reason, -32600)
        try {
          parsed = JSON.parse(body.right)
        } catch {
          return refuse(400, "InvalidInput", "the body is not JSON", -32700)
        }
        if (Array.isArray(parsed)) {
          return refuse(400, "InvalidInput", "JSON-RPC batches are not supported: send one message per request", -32600)
        }
      }

      const sessionId = req.headers["mcp-session-id"]
      let transport: StreamableHTTPServerTransport
      let fresh: Effect.Effect.Success<ReturnType<typeof openSession>> | undefined
      if (typeof sessionId === "string") {
        const session = sessions.get(sessionId)
        if (session === undefined || !crypto.timingSafeEqual(session.tokenDigest, digest(token))) {
          return refuse(404, "NotFound", "no such MCP session (it may have expired): initialize a new one", -32001)
        }
        session.lastSeen = yield* Clock.currentTimeMillis
        transport = session.transport
        session.active++
        yield* Effect.addFinalizer(() =>
          Effect.map(Clock.currentTimeMillis, (now) => {
            session.active--
            session.lastSeen = now
          })
        )
      } else {
        const isInitialize = typeof parsed === "object" && parsed !== null && (parsed as { method?: unknown }).method === "initialize"
        if (!isInitialize) return refuse(400, "InvalidInput", "no Mcp-Session-Id: the first request of a session must be initialize", -32000)
        const mine = [...sessions.values()].filter((s) => s.userId === principal.userId)
        if (mine.length >= config.mcpMaxSessionsPerCaller) {
          // Clients often go away without DELETE: the user's least recently used idle session makes room.
          const idle = mine.filter((s) => s.active === 0).sort((a, b) => a.lastSeen - b.lastSeen)[0]
          if (idle === undefined) {
            return refuse(
              429,
              "TooManyRequests",
              `at most ${config.mcpMaxSessionsPerCaller} MCP sessions per user, all busy: close one (DELETE /mcp)`,
              -32000
            )
          }
          yield* closeSession(idle)
        }
        fresh = yield* openSession(token, principal.userId)
        transport = fresh.transport
      }

      const opened = fresh
      yield* Effect.tryPromise(() => transport.handleRequest(req, res, parsed)).pipe(
        Effect.catchAll(() => Effect.void),
        Effect.ensuring(
          opened === undefined
            ? Effect.void
            : Effect.suspend(() => {
                const session = opened.holder.session
                if (session === undefined) return Scope.close(opened.scope, Exit.void)
                return Effect.map(Clock.currentTimeMillis, (now) => {
                  session.active--
                  session.lastSeen = now
                })
              })
        )
      )
      yield* responseDone(res)
      return HttpServerResponse.empty()
    }).pipe(Effect.scoped)

    yield* router.add("*", McpEndpoint.path, handle)
  })
)
