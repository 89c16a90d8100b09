import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { configProvider } from "../../src/config/ConfigSources.js"
import { ServerConfig } from "../../src/config/ServerConfig.js"
import { startHub, tempDir } from "../support/Hub.js"
import { request } from "../support/Http.js"

/** `/metrics` is open by default and needs `Authorization: Bearer <metricsToken>` once a token is set. */

describe("/metrics token", () => {
  it.scopedLive("with metricsToken: 401 without the right bearer token, the exposition with it; /healthz stays open", () =>
    Effect.gen(function* () {
      const hub = yield* startHub({ metricsToken: Option.some(Redacted.make("m3trics-token")) })
      for (const options of [
        {},
        { token: "wrong" },
        { token: "m3trics-token-but-longer" },
        { token: "m3trics-toke" },
        { token: hub.adminKey },
        { authorization: "Basic bTNAdHJpY3M6eA==" },
        { authorization: "m3trics-token" },
        { authorization: "Bearer" }
      ]) {
        const refused = yield* request(hub, "GET", "/metrics", options)
        assert.strictEqual(refused.status, 401, JSON.stringify(options))
        assert.notInclude(refused.text, "kiris_http_requests_total")
      }
      const ok = yield* request(hub, "GET", "/metrics", { token: "m3trics-token" })
      assert.strictEqual(ok.status, 200)
      assert.include(ok.text, "# TYPE kiris_http_requests_total counter")
      const lowerCase = yield* request(hub, "GET", "/metrics", { authorization: "bearer m3trics-token" })
      assert.strictEqual(lowerCase.status, 200)
      assert.strictEqual((yield* request(hub, "GET", "/healthz")).status, 200)
    })
  )

  it.scopedLive("without metricsToken: /metrics is open", () =>
    Effect.gen(function* () {
      const hub = yield* startHub()
      const open = yield* request(hub, "GET", "/metrics")
      assert.strictEqual(open.status, 200)
      assert.include(open.text, "# TYPE kiris_http_requests_total counter")
    })
  )

  it.effect("metricsToken comes from KIRIS_METRICS_TOKEN or the metricsToken flag; unset by default", () =>
    Effect.gen(function* () {
      const empty = tempDir()
      const read = (flags: Record<string, string>, env: Record<string, string>) =>
        Effect.map(Effect.withConfigProvider(ServerConfig.config, configProvider(flags, { cwd: empty, home: empty, env })), (c) =>
          Option.getOrUndefined(Option.map(c.metricsToken, Redacted.value))
        )
      assert.isUndefined(yield* read({}, {}))
      assert.strictEqual(yield* read({}, { KIRIS_METRICS_TOKEN: "from-env" }), "from-env")
      assert.strictEqual(yield* read({ metricsToken: "from-flag" }, { KIRIS_METRICS_TOKEN: "from-env" }), "from-flag")
    })
  )
})
