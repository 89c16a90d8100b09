import { assert, describe, it } from "@effect/vitest"
import { Context, Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { makeLoginThrottle } from "../../src/auth/Users.js"
import { Metrics } from "../../src/transport/metrics/Metrics.js"
import { startHub, type TestHub } from "../support/Hub.js"
import { request, type Reply } from "../support/Http.js"

/** Password login and API keys as an attacker sees them: throttled guesses, answers that reveal nothing. */

const adminPassword = (hub: TestHub) => fs.readFileSync(path.join(hub.dataDir, "admin.password"), "utf8").trim()

const login = (hub: TestHub, name: string, password: string) => request(hub, "POST", "/api/auth/login", { body: { name, password } })

const expectStatus = (reply: Reply, status: number, tag?: string) => {
  assert.strictEqual(reply.status, status, reply.text.slice(0, 500))
  if (tag !== undefined) assert.strictEqual(reply.json?._tag, tag, reply.text.slice(0, 500))
}

const createUser = (hub: TestHub, name: string, password: string) =>
  Effect.map(request(hub, "POST", "/api/users", { token: hub.adminKey, body: { name, password } }), (r) => expectStatus(r, 201))

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const start = performance.now()
    const result = yield* effect
    return { result, ms: performance.now() - start }
  })

const median = (xs: ReadonlyArray<number>) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

describe("login throttling", () => {
  it.scopedLive("after 5 failures for one name, further attempts (even correct ones) get 429 TooManyRequests; other names are unaffected", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      yield* createUser(hub, "vera", "vera-password")
      for (let i = 0; i < 5; i++) expectStatus(yield* login(hub, "vera", `guess-${i}`), 401, "Unauthorized")
      const throttled = yield* login(hub, "vera", "guess-6")
      expectStatus(throttled, 429, "TooManyRequests")
      assert.isAbove(throttled.json.retryAfterSeconds, 0)
      assert.isAtMost(throttled.json.retryAfterSeconds, 300)
      expectStatus(yield* login(hub, "vera", "vera-password"), 429, "TooManyRequests")
      expectStatus(yield* login(hub, "admin", adminPassword(hub)), 200)
      assert.strictEqual(Context.get(hub.context, Metrics).value("kiris_login_throttled_total"), 2)
      const exposition = (yield* request(hub, "GET", "/metrics")).text
      assert.match(exposition, /^kiris_login_throttled_total 2$/m)
    })
  )

  it.scopedLive("a successful login resets the count", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      yield* createUser(hub, "vera", "vera-password")
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 4; i++) expectStatus(yield* login(hub, "vera", `guess-${i}`), 401, "Unauthorized")
        expectStatus(yield* login(hub, "vera", "vera-password"), 200)
      }
    })
  )

  it.scopedLive("concurrent guesses count too: of 12 at once for one name, at most 5 are checked", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      const replies = yield* Effect.forEach(
        Array.from({ length: 12 }, (_, i) => i),
        (i) => login(hub, "admin", `guess-${i}`),
        {
          concurrency: "unbounded"
        }
      )
      const statuses = replies.map((r) => r.status)
      assert.strictEqual(statuses.filter((s) => s === 401).length, 5, statuses.join(","))
      assert.strictEqual(statuses.filter((s) => s === 429).length, 7, statuses.join(","))
    })
  )

  it("cooling ends after the cooling period; failures older than the window are forgotten; the map stays bounded", () => {
    const t = makeLoginThrottle({ maxFailures: 3, windowMs: 10_000, cooldownMs: 60_000, maxTracked: 4 })
    for (let i = 0; i < 3; i++) assert.isUndefined(t.begin("a", 1000 + i))
    assert.strictEqual(t.begin("a", 2000), 60)
    assert.strictEqual(t.begin("a", 60_500), 1)
    for (let i = 0; i < 3; i++) assert.isUndefined(t.begin("a", 61_002 + i), "a fresh count once cooling ended")
    assert.isNumber(t.begin("a", 61_010))

    for (let i = 0; i < 2; i++) assert.isUndefined(t.begin("b", i))
    for (let i = 0; i < 3; i++) assert.isUndefined(t.begin("b", 20_000 + i), "the first two failures left the window")
    assert.isNumber(t.begin("b", 20_005), "three within the window")

    t.succeeded("a")
    t.succeeded("b")
    for (let i = 0; i < 1000; i++) t.begin(`name-${i}`, 100_000)
    assert.strictEqual(t.size(), 4)
  })
})

describe("login and API key failures reveal nothing", () => {
  it.scopedLive("an unknown user name and a wrong password answer with the same reply and similar timing", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      yield* createUser(hub, "vera", "vera-password")
      yield* createUser(hub, "carl", "carl-password")
      const wrong = yield* login(hub, "admin", "wrong-password")
      const unknown = yield* login(hub, "nobody-here", "wrong-password")
      expectStatus(wrong, 401, "Unauthorized")
      expectStatus(unknown, 401, "Unauthorized")
      assert.strictEqual(unknown.text, wrong.text)

      // Alternate the two kinds so load on the machine hits both alike; at most 4 attempts per name
      // stay under the throttle. Medians of 7 each ride out a few samples slowed by other work.
      const wrongMs: Array<number> = []
      const unknownMs: Array<number> = []
      for (let i = 0; i < 7; i++) {
        const w = yield* timed(login(hub, i % 2 === 0 ? "vera" : "carl", `wrong-${i}`))
        expectStatus(w.result, 401)
        wrongMs.push(w.ms)
        const u = yield* timed(login(hub, `ghost-${i}`, `wrong-${i}`))
        expectStatus(u.result, 401)
        assert.strictEqual(u.result.text, w.result.text)
        unknownMs.push(u.ms)
      }
      assert.isAtLeast(median(unknownMs), median(wrongMs) / 2, `unknown ${unknownMs.join(",")} vs wrong ${wrongMs.join(",")}`)
    })
  )

  it.scopedLive("an unknown API key and a revoked one answer with the same Unauthorized reply", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      const created = yield* request(hub, "POST", "/api/keys", { token: hub.adminKey, body: { name: "short-lived", scopes: ["read"] } })
      expectStatus(created, 201)
      const key = created.json.key as string
      expectStatus(yield* request(hub, "GET", "/api/auth/whoami", { token: key }), 200)
      expectStatus(yield* request(hub, "POST", `/api/keys/${created.json.info.id}/revoke`, { token: hub.adminKey }), 200)
      const revoked = yield* request(hub, "GET", "/api/auth/whoami", { token: key })
      const unknown = yield* request(hub, "GET", "/api/auth/whoami", { token: `kiris_${"x".repeat(43)}` })
      expectStatus(revoked, 401, "Unauthorized")
      expectStatus(unknown, 401, "Unauthorized")
      assert.strictEqual(revoked.text, unknown.text)
    })
  )
})
