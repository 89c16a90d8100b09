import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { startHub, type TestHub } from "../support/Hub.js"
import { request, TASK_OPERATIONS, type Reply } from "../support/Http.js"

const expectStatus = (reply: Reply, status: number, tag?: string) => {
  assert.strictEqual(reply.status, status, reply.text.slice(0, 500))
  if (tag !== undefined) assert.strictEqual(reply.json?._tag, tag, reply.text.slice(0, 500))
}

const adminPassword = (hub: TestHub) => fs.readFileSync(path.join(hub.dataDir, "admin.password"), "utf8").trim()

const login = (hub: TestHub, name: string, password: string) =>
  Effect.map(request(hub, "POST", "/api/auth/login", { body: { name, password } }), (reply) => {
    expectStatus(reply, 200)
    return reply.json.token as string
  })

// == Prometheus text format

interface Sample {
  readonly name: string
  readonly labels: Record<string, string>
  readonly value: number
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*"
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*)?\\})? (-?(?:[0-9]+(?:\\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|NaN|\\+Inf|-Inf))$`)
const HELP = new RegExp(`^# HELP (${NAME}) .*$`)
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`)

/** Parses the text exposition format strictly: any line that is not HELP, TYPE or a sample fails. */
const parsePrometheus = (text: string) => {
  const helps = new Set<string>()
  const types = new Map<string, string>()
  const samples: Array<Sample> = []
  assert.isTrue(text.endsWith("\n"), "exposition ends with a newline")
  for (const line of text.split("\n").slice(0, -1)) {
    const help = HELP.exec(line)
    const type = TYPE.exec(line)
    if (help) helps.add(help[1]!)
    else if (type) types.set(type[1]!, type[2]!)
    else {
      const sample = SAMPLE.exec(line)
      assert.isNotNull(sample, `not a Prometheus sample line: ${JSON.stringify(line)}`)
      const [, name, rawLabels, value] = sample!
      const histogram = types.get(name!.replace(/_(bucket|sum|count)$/, "")) === "histogram"
      assert.isTrue(types.has(name!) || histogram, `sample before its TYPE line: ${line}`)
      const labels: Record<string, string> = {}
      for (const m of (rawLabels ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!
      samples.push({ name: name!, labels, value: Number(value) })
    }
  }
  return { helps, types, samples }
}

const metricsOf = (hub: TestHub) =>
  Effect.map(request(hub, "GET", "/metrics"), (reply) => {
    expectStatus(reply, 200)
    assert.match(reply.contentType, /^text\/plain/)
    return parsePrometheus(reply.text)
  })

const requestCount = (samples: ReadonlyArray<Sample>, labels: { method: string; route: string; status: string }) =>
  samples
    .filter((s) => s.name === "kiris_http_requests_total")
    .filter((s) => s.labels["method"] === labels.method && s.labels["route"] === labels.route && s.labels["status"] === labels.status)
    .reduce((sum, s) => sum + s.value, 0)

// == The REST surface the hub must describe

const EXPECTED_OPERATIONS = [
  "post /api/auth/login",
  "get /api/auth/whoami",
  "post /api/keys",
  "get /api/keys",
  "post /api/keys/{id}/revoke",
  "get /api/users",
  "post /api/users",
  "get /api/projects",
  "post /api/projects",
  "get /api/projects/{projectId}",
  "get /api/projects/{projectId}/members",
  "post /api/projects/{projectId}/members",
  "delete /api/projects/{projectId}/members/{user}",
  "patch /api/projects/{projectId}",
  "delete /api/projects/{projectId}",
  "get /api/projects/{projectId}/sessions",
  "patch /api/projects/{projectId}/sessions/{sessionId}",
  "delete /api/projects/{projectId}/sessions/{sessionId}",
  "delete /api/users/{user}",
  "get /api/projects/{projectId}/files/{path}",
  "put /api/projects/{projectId}/files/{path}",
  "get /api/projects/{projectId}/events",
  "get /api/inbox",
  "post /api/inbox/{id}/answer",
  ...TASK_OPERATIONS
].sort()

const UNAUTHENTICATED = new Set(["post /api/auth/login"])

describe("HTTP: ops routes, OpenAPI, docs and the REST API", () => {
  it.scopedLive("serves /healthz, /readyz and parsable /metrics whose request counter grows by route pattern", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      // the counters are process-wide (other hubs of this process count too): compare with a first reading
      const start = yield* metricsOf(hub)
      const countSince = (samples: ReadonlyArray<Sample>, labels: { method: string; route: string; status: string }) =>
        requestCount(samples, labels) - requestCount(start.samples, labels)
      expectStatus(yield* request(hub, "GET", "/healthz"), 200)
      const ready = yield* request(hub, "GET", "/readyz")
      expectStatus(ready, 200)
      assert.strictEqual(ready.text, "ready")

      const before = yield* metricsOf(hub)
      for (const name of ["kiris_http_requests_total", "kiris_open_connections", "kiris_rpc_calls_total"]) {
        assert.isTrue(before.helps.has(name), `HELP for ${name}`)
        assert.isTrue(before.types.has(name), `TYPE for ${name}`)
      }
      assert.strictEqual(before.types.get("kiris_http_requests_total"), "counter")
      const healthzBefore = countSince(before.samples, { method: "GET", route: "/healthz", status: "200" })
      assert.strictEqual(healthzBefore, 1)

      expectStatus(yield* request(hub, "GET", "/healthz"), 200)
      expectStatus(yield* request(hub, "GET", "/healthz"), 200)
      expectStatus(yield* request(hub, "GET", "/api/projects/prj_secret123", { token: hub.adminKey }), 404, "NotFound")
      expectStatus(yield* request(hub, "GET", "/api/projects/prj_secret456"), 401, "Unauthorized")
      expectStatus(yield* request(hub, "GET", "/no/such/route-789"), 404)

      const after = yield* metricsOf(hub)
      assert.strictEqual(countSince(after.samples, { method: "GET", route: "/healthz", status: "200" }), healthzBefore + 2)
      assert.strictEqual(countSince(after.samples, { method: "GET", route: "/readyz", status: "200" }), 1)
      assert.isAtLeast(countSince(after.samples, { method: "GET", route: "/metrics", status: "200" }), 1)
      const projectRoute = "/api/projects/:projectId"
      assert.strictEqual(countSince(after.samples, { method: "GET", route: projectRoute, status: "404" }), 1)
      assert.strictEqual(countSince(after.samples, { method: "GET", route: projectRoute, status: "401" }), 1)
      assert.strictEqual(countSince(after.samples, { method: "GET", route: "unmatched", status: "404" }), 1)
      const routes = after.samples.filter((s) => s.name === "kiris_http_requests_total").map((s) => s.labels["route"] ?? "")
      assert.isFalse(
        routes.some((r) => /secret|route-789/.test(r)),
        `raw paths leaked into labels: ${routes.join(" ")}`
      )

      // A WebSocket RPC connection is one request, counted once the connection closes.
      yield* Effect.scoped(Effect.flatMap(hub.wsClient(), (client) => client.project.list()))
      const upgraded = yield* metricsOf(hub).pipe(
        Effect.map((m) => countSince(m.samples, { method: "GET", route: "/rpc", status: "101" })),
        Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (n) => n > 0 }),
        Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("the /rpc upgrade was never counted") })
      )
      assert.strictEqual(upgraded, 1)
    })
  )

  it.scopedLive("publishes an OpenAPI 3.1 document listing every REST endpoint with bearer security, and offline docs", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      const reply = yield* request(hub, "GET", "/openapi.json")
      expectStatus(reply, 200)
      const spec = reply.json
      assert.match(spec.openapi, /^3\.1/)
      assert.strictEqual(spec.info.title, "Kiris hub API")
      assert.isString(spec.info.version)
      assert.deepStrictEqual(spec.components.securitySchemes.bearer, { type: "http", scheme: "bearer" })

      const operations: Array<string> = []
      for (const [route, item] of Object.entries<Record<string, any>>(spec.paths)) {
        for (const [method, op] of Object.entries<any>(item)) {
          const key = `${method} ${route}`
          operations.push(key)
          const security: Array<Record<string, unknown>> = op.security ?? []
          if (UNAUTHENTICATED.has(key)) {
            assert.deepStrictEqual(security, [], `${key} needs no token`)
          } else {
            assert.deepInclude(security, { bearer: [] }, `${key} is bearer-protected`)
            assert.property(op.responses, "401", `${key} documents 401`)
          }
        }
      }
      assert.deepStrictEqual(operations.sort(), EXPECTED_OPERATIONS)
      assert.property(spec.paths["/api/projects/{projectId}/members"].post.responses, "403")
      assert.property(spec.paths["/api/projects/{projectId}"].get.responses, "404")
      assert.property(spec.paths["/api/users"].post.responses, "409")
      assert.property(spec.paths["/api/projects"].post.responses, "201")
      const events = spec.paths["/api/projects/{projectId}/events"].get
      assert.property(events.responses["200"].content, "text/event-stream", "the event stream is documented as Server-Sent Events")
      assert.includeMembers(
        events.parameters.map((p: { name: string; in: string }) => `${p.in} ${p.name}`),
        ["query since", "header last-event-id"]
      )

      const docs = yield* request(hub, "GET", "/docs")
      expectStatus(docs, 200)
      assert.match(docs.contentType, /^text\/html/)
      assert.include(docs.text, "SwaggerUIBundle")
      assert.include(docs.text, "Kiris hub API")
      const scriptTags = [...docs.text.matchAll(/<script\b[^>]*>/gi)].map((m) => m[0])
      assert.isAbove(scriptTags.length, 0)
      for (const tag of scriptTags) assert.notMatch(tag, /\bsrc\s*=/i, `external script: ${tag}`)
      assert.notMatch(docs.text, /<link\b[^>]*href\s*=\s*["']?https?:/i)
      assert.notMatch(docs.text, /(?:unpkg\.com|jsdelivr\.net|cdnjs\.cloudflare\.com)/i)
    })
  )

  it.scopedLive("refuses missing and bad tokens with 401, accepts login JWTs and API keys", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      for (const [route, method] of [
        ["/api/projects", "GET"],
        ["/api/users", "GET"],
        ["/api/keys", "GET"],
        ["/api/auth/whoami", "GET"]
      ] as const) {
        const missing = yield* request(hub, method, route)
        expectStatus(missing, 401, "Unauthorized")
        assert.strictEqual(missing.json.reason, "missing bearer token")
        expectStatus(yield* request(hub, method, route, { token: "not-a-jwt" }), 401, "Unauthorized")
        expectStatus(yield* request(hub, method, route, { token: "kiris_forged" }), 401, "Unauthorized")
        expectStatus(yield* request(hub, method, route, { authorization: "Basic YWRtaW46eA==" }), 401, "Unauthorized")
      }
      expectStatus(yield* request(hub, "POST", "/api/projects", { body: { name: "x" } }), 401, "Unauthorized")

      expectStatus(yield* request(hub, "POST", "/api/auth/login", { body: { name: "admin", password: "wrong-password" } }), 401, "Unauthorized")
      expectStatus(yield* request(hub, "POST", "/api/auth/login", { body: { name: "admin" } }), 400, "HttpApiDecodeError")

      const loggedIn = yield* request(hub, "POST", "/api/auth/login", { body: { name: "admin", password: adminPassword(hub) } })
      expectStatus(loggedIn, 200)
      assert.strictEqual(loggedIn.json.user.name, "admin")
      assert.isTrue(loggedIn.json.user.isAdmin)
      assert.isAbove(loggedIn.json.expiresAt, Date.now())
      const jwt: string = loggedIn.json.token
      assert.match(jwt, /^[\w-]+\.[\w-]+\.[\w-]+$/)

      const me = yield* request(hub, "GET", "/api/auth/whoami", { token: jwt })
      expectStatus(me, 200)
      assert.deepInclude(me.json, { kind: "user", name: "admin", isAdmin: true })
      expectStatus(yield* request(hub, "GET", "/api/projects", { token: jwt }), 200)
      expectStatus(yield* request(hub, "GET", "/api/projects", { authorization: `bearer ${jwt}` }), 200)
      const tampered = jwt.slice(0, -2) + (jwt.endsWith("AA") ? "BB" : "AA")
      expectStatus(yield* request(hub, "GET", "/api/projects", { token: tampered }), 401, "Unauthorized")

      const viaKey = yield* request(hub, "GET", "/api/auth/whoami", { token: hub.adminKey })
      expectStatus(viaKey, 200)
      assert.deepInclude(viaKey.json, { kind: "apikey", name: "admin", isAdmin: true })
    })
  )

  it.scopedLive("answers malformed and oversized bodies with a typed error and keeps serving", () =>
    Effect.gen(function* () {
      const hub = yield* startHub({ maxFrameBytes: 64 * 1024 })
      const raw = (route: string, body: string, token?: string) =>
        Effect.promise(async () => {
          const headers: Record<string, string> = { "content-type": "application/json" }
          if (token !== undefined) headers["authorization"] = `Bearer ${token}`
          const res = await fetch(hub.httpUrl + route, { method: "POST", headers, body })
          return { status: res.status, json: (await res.json()) as { _tag: string; reason: string } }
        })
      const malformed = yield* raw("/api/auth/login", "{not json")
      assert.strictEqual(malformed.status, 400)
      assert.strictEqual(malformed.json._tag, "InvalidInput")
      assert.match(malformed.json.reason, /JSON/)
      const malformedAuthed = yield* raw("/api/projects", "[1,", hub.adminKey)
      assert.deepStrictEqual([malformedAuthed.status, malformedAuthed.json._tag], [400, "InvalidInput"])

      const huge = JSON.stringify({ name: "admin", password: "x".repeat(100 * 1024) })
      const tooLarge = yield* raw("/api/auth/login", huge)
      assert.strictEqual(tooLarge.status, 413)
      assert.deepStrictEqual(tooLarge.json, { _tag: "InvalidInput", reason: "request body larger than 65536 bytes" })
      const tooLargeAuthed = yield* raw("/api/projects", JSON.stringify({ name: "p", description: "d".repeat(100 * 1024) }), hub.adminKey)
      assert.strictEqual(tooLargeAuthed.status, 413)

      expectStatus(yield* request(hub, "GET", "/healthz"), 200)
      const fine = yield* request(hub, "POST", "/api/projects", { token: hub.adminKey, body: { name: "still works" } })
      expectStatus(fine, 201)
    })
  )

  it.scopedLive("manages users, keys, projects and members end to end with role checks", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      const admin = yield* login(hub, "admin", adminPassword(hub))

      const vera = yield* request(hub, "POST", "/api/users", { token: admin, body: { name: "vera", password: "vera-password" } })
      expectStatus(vera, 201)
      assert.deepInclude(vera.json, { name: "vera", isAdmin: false })
      expectStatus(yield* request(hub, "POST", "/api/users", { token: admin, body: { name: "vera", password: "other-password" } }), 409, "Conflict")
      expectStatus(yield* request(hub, "POST", "/api/users", { token: admin, body: { name: "bad name!", password: "x" } }), 400, "HttpApiDecodeError")
      expectStatus(yield* request(hub, "POST", "/api/users", { token: admin, body: { name: "carl", password: "carl-password" } }), 201)
      const users = yield* request(hub, "GET", "/api/users", { token: admin })
      expectStatus(users, 200)
      assert.deepStrictEqual(users.json.map((u: { name: string }) => u.name).sort(), ["admin", "carl", "vera"])

      const created = yield* request(hub, "POST", "/api/projects", { token: admin, body: { name: "p1", description: "first" } })
      expectStatus(created, 201)
      assert.deepInclude(created.json, { name: "p1", description: "first", role: "owner" })
      const projectId: string = created.json.id
      expectStatus(yield* request(hub, "POST", "/api/projects", { token: admin, body: {} }), 400, "HttpApiDecodeError")
      const listed = yield* request(hub, "GET", "/api/projects", { token: admin })
      expectStatus(listed, 200)
      assert.deepStrictEqual(
        listed.json.map((p: { id: string }) => p.id),
        [projectId]
      )
      const got = yield* request(hub, "GET", `/api/projects/${projectId}`, { token: admin })
      expectStatus(got, 200)
      assert.strictEqual(got.json.name, "p1")

      const added = yield* request(hub, "POST", `/api/projects/${projectId}/members`, { token: admin, body: { user: "vera", role: "viewer" } })
      expectStatus(added, 200)
      assert.deepInclude(added.json, { projectId, userName: "vera", role: "viewer" })
      expectStatus(
        yield* request(hub, "POST", `/api/projects/${projectId}/members`, { token: admin, body: { user: "nobody", role: "viewer" } }),
        404,
        "NotFound"
      )
      expectStatus(
        yield* request(hub, "POST", `/api/projects/${projectId}/members`, { token: admin, body: { user: "carl", role: "king" } }),
        400,
        "HttpApiDecodeError"
      )
      const members = yield* request(hub, "GET", `/api/projects/${projectId}/members`, { token: admin })
      expectStatus(members, 200)
      assert.deepStrictEqual(members.json.map((m: { userName: string; role: string }) => `${m.userName}:${m.role}`).sort(), [
        "admin:owner",
        "vera:viewer"
      ])

      // A viewer sees the project but may not change its members, nor list server users.
      const veraToken = yield* login(hub, "vera", "vera-password")
      const veraList = yield* request(hub, "GET", "/api/projects", { token: veraToken })
      expectStatus(veraList, 200)
      assert.deepStrictEqual(
        veraList.json.map((p: { id: string; role: string }) => `${p.id}:${p.role}`),
        [`${projectId}:viewer`]
      )
      expectStatus(yield* request(hub, "GET", `/api/projects/${projectId}/members`, { token: veraToken }), 200)
      const denied = yield* request(hub, "POST", `/api/projects/${projectId}/members`, { token: veraToken, body: { user: "carl", role: "member" } })
      expectStatus(denied, 403, "Forbidden")
      assert.isString(denied.json.reason)
      expectStatus(yield* request(hub, "DELETE", `/api/projects/${projectId}/members/admin`, { token: veraToken }), 403, "Forbidden")
      expectStatus(yield* request(hub, "GET", "/api/users", { token: veraToken }), 403, "Forbidden")

      // A non-member cannot tell the project exists.
      const carlToken = yield* login(hub, "carl", "carl-password")
      const hidden = yield* request(hub, "GET", `/api/projects/${projectId}`, { token: carlToken })
      expectStatus(hidden, 404, "NotFound")
      assert.deepInclude(hidden.json, { entity: "project", id: projectId })
      expectStatus(yield* request(hub, "GET", `/api/projects/${projectId}/members`, { token: carlToken }), 404, "NotFound")
      const carlList = yield* request(hub, "GET", "/api/projects", { token: carlToken })
      expectStatus(carlList, 200)
      assert.deepStrictEqual(carlList.json, [])
      const own = yield* request(hub, "POST", "/api/projects", { token: carlToken, body: { name: "carl's" } })
      expectStatus(own, 201)
      expectStatus(yield* request(hub, "GET", `/api/projects/${own.json.id}`, { token: veraToken }), 404, "NotFound")

      // API keys: created once with the secret, usable as a bearer token, revoked for good.
      const key = yield* request(hub, "POST", "/api/keys", { token: veraToken, body: { name: "ci", scopes: ["read"] } })
      expectStatus(key, 201)
      assert.match(key.json.key, /^kiris_/)
      assert.deepInclude(key.json.info, { name: "ci", revokedAt: null })
      const keyWhoami = yield* request(hub, "GET", "/api/auth/whoami", { token: key.json.key })
      expectStatus(keyWhoami, 200)
      assert.deepInclude(keyWhoami.json, { kind: "apikey", name: "vera", scopes: ["read"] })
      expectStatus(yield* request(hub, "POST", "/api/projects", { token: key.json.key, body: { name: "nope" } }), 403, "Forbidden")
      const veraKeys = yield* request(hub, "GET", "/api/keys", { token: veraToken })
      expectStatus(veraKeys, 200)
      assert.deepStrictEqual(
        veraKeys.json.map((k: { id: string }) => k.id),
        [key.json.info.id]
      )
      expectStatus(yield* request(hub, "POST", `/api/keys/${key.json.info.id}/revoke`, { token: carlToken }), 404, "NotFound")
      const revoked = yield* request(hub, "POST", `/api/keys/${key.json.info.id}/revoke`, { token: veraToken })
      expectStatus(revoked, 200)
      assert.isNumber(revoked.json.revokedAt)
      const afterRevoke = yield* request(hub, "GET", "/api/auth/whoami", { token: key.json.key })
      expectStatus(afterRevoke, 401, "Unauthorized")
      assert.strictEqual(afterRevoke.json.reason, "unknown API key", "a revoked key answers like an unknown one")

      // Removing a member takes the project away from them.
      const removed = yield* request(hub, "DELETE", `/api/projects/${projectId}/members/vera`, { token: admin })
      expectStatus(removed, 204)
      assert.strictEqual(removed.text, "")
      expectStatus(yield* request(hub, "GET", `/api/projects/${projectId}`, { token: veraToken }), 404, "NotFound")
      expectStatus(yield* request(hub, "DELETE", `/api/projects/${projectId}/members/vera`, { token: admin }), 404, "NotFound")
      expectStatus(yield* request(hub, "DELETE", `/api/projects/${projectId}/members/admin`, { token: admin }), 400, "InvalidInput")
    })
  )
})
