import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, type Scope } from "effect"
import { Api } from "../../src/domain/http/Api.js"
import { RawRoutes } from "../../src/domain/http/McpApi.js"
import { ClientRpcs } from "../../src/domain/rpc/ClientRpcs.js"
import { request as rest } from "../support/Http.js"
import { type RawConnection, rawTcp, rawWebSocket, type ServerMessage } from "../support/RawRpc.js"
import { CALLERS, declaredLevel, expected, type Level, makeWorld, startMatrixHub, type World } from "./matrix.js"

/**
 * The auth matrix: every RPC tag and every REST operation × every kind of caller that must be
 * refused, each cell asserting the exact refusal. The tables below name each operation's level and a
 * valid sample input; an operation missing from a table, or declared differently in src/domain,
 * fails the suite.
 */

interface RpcCase {
  readonly level: Level
  readonly payload: (w: World) => unknown
  /** A variant of the payload that runs commands (needs the execute grant). */
  readonly commands?: (w: World) => unknown
}

const shell = (w: World) => ({ projectId: w.projectId, kind: "shell", payload: { command: "echo hi" } })
const chat = (w: World) => ({ projectId: w.projectId, kind: "chat", payload: { prompt: "hi" } })
const inSession = (w: World) => ({ projectId: w.projectId, sessionId: w.sessionId })
const fenced = (w: World) => ({ taskId: w.taskId, fencingToken: 1 })

const RPCS: Record<string, RpcCase> = {
  "project.create": { level: "user-write", payload: () => ({ name: "another" }) },
  "project.list": { level: "user-read", payload: () => undefined },
  "project.get": { level: "viewer", payload: (w) => ({ projectId: w.projectId }) },
  "project.members": { level: "viewer", payload: (w) => ({ projectId: w.projectId }) },
  "project.addMember": { level: "project-admin", payload: (w) => ({ projectId: w.projectId, user: "outsider", role: "viewer" }) },
  "project.removeMember": { level: "project-admin", payload: (w) => ({ projectId: w.projectId, user: "member" }) },
  "project.update": { level: "project-owner", payload: (w) => ({ projectId: w.projectId, name: "renamed" }) },
  "project.delete": { level: "project-owner", payload: (w) => ({ projectId: w.projectId, confirm: "P" }) },
  "user.whoami": { level: "self", payload: () => undefined },
  "user.create": { level: "admin-write", payload: () => ({ name: "intruder", password: "intruder-password" }) },
  "user.list": { level: "admin-read", payload: () => undefined },
  "user.delete": { level: "admin-write", payload: () => ({ user: "member" }) },
  "key.create": { level: "user-write", payload: () => ({ name: "k", scopes: ["read"] }) },
  "key.list": { level: "user-read", payload: () => undefined },
  "key.revoke": { level: "user-write", payload: () => ({ id: "key_unknown" }) },
  "events.subscribe": { level: "viewer", payload: (w) => ({ projectId: w.projectId }) },
  "permission.pending": { level: "viewer", payload: (w) => ({ projectId: w.projectId }) },
  "permission.reply": { level: "member", payload: (w) => ({ projectId: w.projectId, requestId: "perm_unknown", reply: "once" }) },
  "permission.rules": { level: "viewer", payload: (w) => ({ projectId: w.projectId }) },
  "permission.setRule": { level: "project-admin", payload: (w) => ({ projectId: w.projectId, tool: "read", pattern: "*", action: "allow" }) },
  "permission.removeRule": { level: "project-admin", payload: (w) => ({ projectId: w.projectId, ruleId: "rule_unknown" }) },
  "session.create": { level: "member", payload: (w) => ({ projectId: w.projectId }) },
  "session.list": { level: "viewer", payload: (w) => ({ projectId: w.projectId }) },
  "session.get": { level: "viewer", payload: inSession },
  "session.prompt": { level: "member", payload: (w) => ({ ...inSession(w), text: "hello" }) },
  "session.cancel": { level: "member", payload: inSession },
  "session.queue": { level: "viewer", payload: inSession },
  "session.dequeue": { level: "member", payload: (w) => ({ ...inSession(w), promptId: "qp_unknown" }) },
  "session.totals": { level: "viewer", payload: (w) => ({ projectId: w.projectId }) },
  "session.revert": { level: "member", payload: inSession },
  "file.list": { level: "viewer", payload: (w) => ({ projectId: w.projectId }) },
  "file.read": { level: "viewer", payload: (w) => ({ projectId: w.projectId, path: "a.txt" }) },
  "file.write": { level: "member", payload: (w) => ({ projectId: w.projectId, path: "a.txt", content: "forged" }) },
  "file.history": { level: "viewer", payload: (w) => ({ projectId: w.projectId, path: "a.txt" }) },
  "file.diff": { level: "viewer", payload: (w) => ({ projectId: w.projectId, path: "a.txt", from: 1, to: 2 }) },
  "file.snapshot": { level: "member", payload: (w) => ({ projectId: w.projectId, label: "forged" }) },
  "file.snapshots": { level: "viewer", payload: (w) => ({ projectId: w.projectId }) },
  "file.restore": { level: "member", payload: (w) => ({ projectId: w.projectId, snapshotId: 1, force: true }) },
  "file.locks": { level: "viewer", payload: (w) => ({ projectId: w.projectId }) },
  "session.rename": { level: "member", payload: (w) => ({ ...inSession(w), title: "renamed" }) },
  "session.archive": { level: "member", payload: inSession },
  "session.delete": { level: "member", payload: inSession },
  "task.enqueue": { level: "member", payload: chat, commands: shell },
  "task.enqueueBatch": { level: "member", payload: (w) => ({ tasks: [chat(w)] }), commands: (w) => ({ tasks: [chat(w), shell(w)] }) },
  "task.get": { level: "viewer", payload: (w) => ({ taskId: w.taskId }) },
  "task.list": { level: "viewer", payload: (w) => ({ projectId: w.projectId }) },
  "task.cancel": { level: "member", payload: (w) => ({ taskId: w.taskId }) },
  "task.retry": { level: "member", payload: (w) => ({ taskId: w.taskId }) },
  "task.approve": { level: "member", payload: (w) => ({ taskId: w.taskId }) },
  "task.wait": { level: "viewer", payload: (w) => ({ taskIds: [w.taskId], timeoutMs: 0 }) },
  "task.stats": { level: "viewer", payload: (w) => ({ projectId: w.projectId }) },
  "task.map": {
    level: "member",
    payload: (w) => ({ projectId: w.projectId, kind: "chat", items: [{ prompt: "a" }] }),
    commands: (w) => ({ projectId: w.projectId, kind: "shell", items: [{ command: "echo a" }] })
  },
  "task.workers": { level: "user-read", payload: () => undefined },
  "task.drainWorker": { level: "admin-write", payload: () => ({ workerId: "wrk_unknown" }) },
  "worker.connect": { level: "worker", payload: () => ({ name: "w", kinds: ["chat"], capacity: 1 }) },
  "task.lease": { level: "worker", payload: () => ({ workerId: "wrk_unknown", kinds: ["chat"], max: 1 }) },
  "task.heartbeat": { level: "worker", payload: fenced },
  "task.complete": { level: "worker", payload: (w) => ({ ...fenced(w), result: "forged" }) },
  "task.fail": { level: "worker", payload: (w) => ({ ...fenced(w), message: "forged" }) },
  "task.completeBatch": { level: "worker", payload: (w) => ({ items: [{ ...fenced(w), result: "forged" }] }) },
  "task.progress": { level: "worker", payload: (w) => ({ ...fenced(w), parts: [] }) },
  "presence.join": { level: "viewer", payload: inSession },
  "presence.leave": { level: "viewer", payload: (w) => ({ projectId: w.projectId }) },
  "presence.heartbeat": { level: "viewer", payload: (w) => ({ projectId: w.projectId }) },
  "presence.list": { level: "viewer", payload: (w) => ({ projectId: w.projectId }) },
  "presence.typing": { level: "viewer", payload: inSession },
  "inbox.list": { level: "viewer", payload: (w) => ({ projectId: w.projectId }) },
  "inbox.answer": { level: "user-write", payload: (w) => ({ id: w.taskId, answer: "approve" }) }
}

interface RestCase {
  readonly level: Level | "public"
  readonly method: string
  readonly path: (w: World) => string
  readonly body?: (w: World) => unknown
  readonly commands?: (w: World) => unknown
}

const RESTS: Record<string, RestCase> = {
  "auth.login": { level: "public", method: "POST", path: () => "/api/auth/login" },
  "auth.whoami": { level: "self", method: "GET", path: () => "/api/auth/whoami" },
  "keys.create": { level: "user-write", method: "POST", path: () => "/api/keys", body: () => ({ name: "k", scopes: ["read"] }) },
  "keys.list": { level: "user-read", method: "GET", path: () => "/api/keys" },
  "keys.revoke": { level: "user-write", method: "POST", path: () => "/api/keys/key_unknown/revoke" },
  "users.list": { level: "admin-read", method: "GET", path: () => "/api/users" },
  "users.create": {
    level: "admin-write",
    method: "POST",
    path: () => "/api/users",
    body: () => ({ name: "intruder", password: "intruder-password" })
  },
  "users.delete": { level: "admin-write", method: "DELETE", path: () => "/api/users/member" },
  "projects.list": { level: "user-read", method: "GET", path: () => "/api/projects" },
  "projects.create": { level: "user-write", method: "POST", path: () => "/api/projects", body: () => ({ name: "another" }) },
  "projects.get": { level: "viewer", method: "GET", path: (w) => `/api/projects/${w.projectId}` },
  "projects.members": { level: "viewer", method: "GET", path: (w) => `/api/projects/${w.projectId}/members` },
  "projects.addMember": {
    level: "project-admin",
    method: "POST",
    path: (w) => `/api/projects/${w.projectId}/members`,
    body: () => ({ user: "outsider", role: "viewer" })
  },
  "projects.removeMember": { level: "project-admin", method: "DELETE", path: (w) => `/api/projects/${w.projectId}/members/member` },
  "projects.update": { level: "project-owner", method: "PATCH", path: (w) => `/api/projects/${w.projectId}`, body: () => ({ name: "renamed" }) },
  "projects.delete": { level: "project-owner", method: "DELETE", path: (w) => `/api/projects/${w.projectId}`, body: () => ({ confirm: "P" }) },
  "projects.sessions": { level: "viewer", method: "GET", path: (w) => `/api/projects/${w.projectId}/sessions` },
  "projects.updateSession": {
    level: "member",
    method: "PATCH",
    path: (w) => `/api/projects/${w.projectId}/sessions/${w.sessionId}`,
    body: () => ({ title: "renamed" })
  },
  "projects.deleteSession": { level: "member", method: "DELETE", path: (w) => `/api/projects/${w.projectId}/sessions/${w.sessionId}` },
  "tasks.enqueue": { level: "member", method: "POST", path: () => "/api/tasks", body: chat, commands: shell },
  "tasks.enqueueBatch": {
    level: "member",
    method: "POST",
    path: () => "/api/tasks/batch",
    body: (w) => ({ tasks: [chat(w)] }),
    commands: (w) => ({ tasks: [shell(w)] })
  },
  "tasks.list": { level: "viewer", method: "GET", path: (w) => `/api/tasks?projectId=${w.projectId}` },
  "tasks.stats": { level: "viewer", method: "GET", path: (w) => `/api/tasks/stats?projectId=${w.projectId}` },
  "tasks.wait": { level: "viewer", method: "POST", path: () => "/api/tasks/wait", body: (w) => ({ taskIds: [w.taskId], timeoutMs: 0 }) },
  "tasks.map": {
    level: "member",
    method: "POST",
    path: () => "/api/tasks/map",
    body: (w) => ({ projectId: w.projectId, kind: "chat", items: [{ prompt: "a" }] }),
    commands: (w) => ({ projectId: w.projectId, kind: "python", items: [{ command: "print(1)" }] })
  },
  "tasks.get": { level: "viewer", method: "GET", path: (w) => `/api/tasks/${w.taskId}` },
  "tasks.cancel": { level: "member", method: "POST", path: (w) => `/api/tasks/${w.taskId}/cancel` },
  "tasks.retry": { level: "member", method: "POST", path: (w) => `/api/tasks/${w.taskId}/retry` },
  "tasks.approve": { level: "member", method: "POST", path: (w) => `/api/tasks/${w.taskId}/approve`, body: () => ({}) },
  "tasks.workers": { level: "user-read", method: "GET", path: () => "/api/workers" },
  "files.upload": { level: "member", method: "PUT", path: (w) => `/api/projects/${w.projectId}/files/a.txt`, body: () => ({ forged: true }) },
  "files.download": { level: "viewer", method: "GET", path: (w) => `/api/projects/${w.projectId}/files/a.txt` },
  "events.stream": { level: "viewer", method: "GET", path: (w) => `/api/projects/${w.projectId}/events` },
  "inbox.list": { level: "viewer", method: "GET", path: (w) => `/api/inbox?projectId=${w.projectId}` },
  "inbox.answer": { level: "user-write", method: "POST", path: (w) => `/api/inbox/${w.taskId}/answer`, body: () => ({ answer: "approve" }) },
  "mcp.endpoint": {
    level: "user-read",
    method: "POST",
    path: () => "/mcp",
    body: () => ({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "matrix", version: "1" } }
    })
  }
}

const STATUS: Record<string, number> = { Unauthorized: 401, Forbidden: 403, NotFound: 404 }

const restEndpoints = () =>
  Object.entries(Api.groups as unknown as Record<string, { readonly endpoints: Record<string, { readonly annotations: unknown }> }>)
    .flatMap(([group, g]) => Object.entries(g.endpoints).map(([name, e]) => ({ id: `${group}.${name}`, annotations: e.annotations as unknown })))
    .concat(RawRoutes.map((r) => ({ id: r.id, annotations: r.annotations as unknown })))

/** The refusal in an `Exit` (or the connection-level `Defect`), as `_tag` plus NotFound's entity. */
const refusalOf = (m: ServerMessage): { tag: string; entity?: string } => {
  const exit = m["exit"] as { _tag: string; cause?: { _tag: string; error?: { _tag: string; entity?: string }; defect?: unknown } } | undefined
  if (exit === undefined) return { tag: `message ${m._tag}` }
  if (exit._tag === "Success") return { tag: "Success" }
  const cause = exit.cause
  if (cause?._tag === "Fail" && cause.error !== undefined) {
    return cause.error.entity === undefined ? { tag: cause.error._tag } : { tag: cause.error._tag, entity: cause.error.entity }
  }
  return { tag: `${cause?._tag}: ${JSON.stringify(cause?.defect ?? cause).slice(0, 300)}` }
}

const runRpcMatrix = (connect: (w: World) => Effect.Effect<RawConnection, never, Scope.Scope>) =>
  Effect.gen(function* () {
    const hub = yield* startMatrixHub()
    const world = yield* makeWorld(hub)
    const conn = yield* connect(world)
    const failures: Array<string> = []
    let cells = 0
    let id = 0
    for (const [tag, c] of Object.entries(RPCS)) {
      for (const caller of CALLERS) {
        const want = expected(caller, c.level, c.commands !== undefined)
        if (want === undefined) continue
        const payload = caller === "member without execute enqueuing commands" ? c.commands!(world) : c.payload(world)
        const token = world.tokens[caller]
        const requestId = String(++id)
        yield* conn.send({
          _tag: "Request",
          id: requestId,
          tag,
          ...(payload === undefined ? {} : { payload }),
          headers: token === undefined ? [] : [["authorization", `Bearer ${token}`]]
        })
        const reply = yield* conn.next(`${tag} as ${caller}`, (m) => m.requestId === requestId && m._tag === "Exit")
        const got = refusalOf(reply)
        cells++
        const entityOk = want !== "NotFound" || got.entity === "project"
        if (got.tag !== want || !entityOk)
          failures.push(`${tag} as ${caller}: expected ${want}, got ${got.tag}${got.entity ? ` (${got.entity})` : ""}`)
      }
    }
    return { failures, cells }
  })

describe("auth matrix", () => {
  it("every RPC tag and REST operation is in the matrix and declares the level the matrix expects", () => {
    const tags = Array.from(ClientRpcs.requests.keys()).sort()
    assert.deepStrictEqual(tags, Object.keys(RPCS).sort(), "an RPC is missing from the matrix (or the matrix names one that does not exist)")
    for (const [tag, rpc] of ClientRpcs.requests) {
      assert.deepStrictEqual(declaredLevel(rpc.annotations), Option.some(RPCS[tag]!.level), `${tag} declares another requirement`)
    }
    const endpoints = restEndpoints()
    assert.deepStrictEqual(endpoints.map((e) => e.id).sort(), Object.keys(RESTS).sort(), "a REST operation is missing from the matrix")
    for (const e of endpoints) {
      assert.deepStrictEqual(declaredLevel(e.annotations), Option.some(RESTS[e.id]!.level), `${e.id} declares another requirement`)
    }
  })

  it.scopedLive("every RPC refuses every caller it must refuse, over TCP", () =>
    Effect.gen(function* () {
      const { cells, failures } = yield* runRpcMatrix((w) => rawTcp(w.hub.tcpPort))
      assert.deepStrictEqual(failures, [])
      assert.isAbove(cells, 200)
    })
  )

  it.scopedLive("every RPC refuses every caller it must refuse, over WebSocket", () =>
    Effect.gen(function* () {
      const { cells, failures } = yield* runRpcMatrix((w) => rawWebSocket(w.hub.wsUrl))
      assert.deepStrictEqual(failures, [])
      assert.isAbove(cells, 200)
    })
  )

  it.scopedLive("every REST operation refuses every caller it must refuse", () =>
    Effect.gen(function* () {
      const hub = yield* startMatrixHub()
      const world = yield* makeWorld(hub)
      const failures: Array<string> = []
      let cells = 0
      for (const c of Object.values(RESTS)) {
        if (c.level === "public") continue
        for (const caller of CALLERS) {
          const want = expected(caller, c.level, c.commands !== undefined)
          if (want === undefined) continue
          const body = caller === "member without execute enqueuing commands" ? c.commands!(world) : c.body?.(world)
          const token = world.tokens[caller]
          const reply = yield* rest(hub, c.method, c.path(world), {
            ...(token === undefined ? {} : { token }),
            ...(body === undefined ? {} : { body })
          })
          cells++
          const tag = (reply.json as { _tag?: string } | undefined)?._tag
          const entityOk = want !== "NotFound" || (reply.json as { entity?: string }).entity === "project"
          if (reply.status !== STATUS[want] || tag !== want || !entityOk) {
            failures.push(
              `${c.method} ${c.path(world)} as ${caller}: expected ${STATUS[want]} ${want}, got ${reply.status} ${reply.text.slice(0, 200)}`
            )
          }
        }
      }
      assert.deepStrictEqual(failures, [])
      assert.isAbove(cells, 100)
    })
  )
})
