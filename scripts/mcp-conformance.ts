/**
 * Runs the MCP conformance suite's server scenarios (`@modelcontextprotocol/conformance`) against
 * the hub's `/mcp`: starts a hub on a temporary data dir, puts a small proxy in front of it that
 * adds the admin key as `Authorization: Bearer …` (the suite's client sends no credentials), runs
 * every server scenario and prints one line per scenario with its passed and failed checks.
 *
 *   npm run mcp:conformance                # every server scenario
 *   npm run mcp:conformance -- ping tools-list
 *
 * Exits non-zero when a scenario listed in APPLICABLE has a failed check. The other scenarios call
 * tools, prompts and resources of the suite's reference server (`test_simple_text`, `test://…`),
 * which Kiris does not have; they are run and reported, not judged.
 */
import { HttpServer } from "@effect/platform"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Context, Effect, Layer } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { HubLayer } from "../src/AppLayer.js"
import { ServerConfig } from "../src/config/ServerConfig.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const cli = path.join(root, "node_modules/@modelcontextprotocol/conformance/dist/index.js")
const node20 = path.join(root, "scripts/mcp-conformance.node20.mjs")

/** Scenarios that test the protocol and transport rather than the reference server's own tools. */
export const APPLICABLE = [
  "server-initialize",
  "logging-set-level",
  "ping",
  "tools-list",
  "resources-list",
  "server-sse-multiple-streams",
  "dns-rebinding-protection"
]

interface Check {
  readonly id: string
  readonly status: string
  readonly errorMessage?: string
}

const conformance = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn(process.execPath, [...(Number(process.versions.node.split(".")[0]) < 22 ? ["--import", node20] : []), cli, ...args], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (d: Buffer) => (output += d.toString()))
    child.stderr.on("data", (d: Buffer) => (output += d.toString()))
    child.on("close", (code) => resolve({ code, output }))
  })

const listScenarios = async () => {
  const { output } = await conformance(["list", "--server"])
  return [...output.matchAll(/^\s+- (\S+)/gm)].map((m) => m[1]!)
}

const checksIn = (dir: string): Array<Check> => {
  const found: Array<Check> = []
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name)
      if (entry.isDirectory()) walk(p)
      else if (entry.name === "checks.json") found.push(...(JSON.parse(fs.readFileSync(p, "utf8")) as Array<Check>))
    }
  }
  if (fs.existsSync(dir)) walk(dir)
  return found
}

/** Forwards every request to the hub with the admin key added; Host and Origin pass unchanged. */
const authProxy = (hubPort: number, token: string) =>
  new Promise<http.Server & { port: number }>((resolve) => {
    const server = http.createServer((req, res) => {
      const upstream = http.request(
        { host: "127.0.0.1", port: hubPort, method: req.method, path: req.url, headers: { ...req.headers, authorization: `Bearer ${token}` } },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers)
          up.pipe(res)
        }
      )
      upstream.on("error", () => res.destroy())
      res.on("close", () => upstream.destroy())
      req.pipe(upstream)
    })
    server.listen(0, "localhost", () => resolve(Object.assign(server, { port: (server.address() as { port: number }).port })))
  })

const main = Effect.gen(function* () {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kiris-mcp-conformance-"))
  const context = yield* Layer.build(
    HubLayer.pipe(Layer.provide(ServerConfig.layerWith({ dataDir, port: 0, tcpPort: 0, host: "127.0.0.1" })), Layer.provide(NodeContext.layer))
  )
  const hubPort = (Context.get(context, HttpServer.HttpServer).address as HttpServer.TcpAddress).port
  const token = fs.readFileSync(path.join(dataDir, "admin.key"), "utf8").trim()
  const proxy = yield* Effect.acquireRelease(
    Effect.promise(() => authProxy(hubPort, token)),
    (p) => Effect.sync(() => p.closeAllConnections()).pipe(Effect.zipRight(Effect.promise(() => new Promise((r) => p.close(r)))))
  )
  const url = `http://localhost:${proxy.port}/mcp`
  const wanted = process.argv.slice(2)
  const scenarios = wanted.length > 0 ? wanted : yield* Effect.promise(listScenarios)
  let failedApplicable = 0
  console.log(`MCP conformance (server scenarios) against ${url}`)
  for (const scenario of scenarios) {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), `kiris-mcp-${scenario}-`))
    const run = yield* Effect.promise(() => conformance(["server", "--url", url, "--scenario", scenario, "-o", out]))
    const checks = checksIn(out)
    const passed = checks.filter((c) => c.status === "SUCCESS").length
    const failed = checks.filter((c) => c.status === "FAILURE")
    const applicable = APPLICABLE.includes(scenario)
    // A scenario may record no passed or failed check (only informational ones): "NONE".
    const verdict = failed.length > 0 ? "FAIL" : passed > 0 ? "PASS" : run.code === 0 ? "NONE" : "ERROR"
    if (applicable && verdict !== "PASS") failedApplicable++
    const why = failed.map((c) => `${c.id}: ${(c.errorMessage ?? "").split("\n")[0]!.slice(0, 140)}`).join("; ")
    console.log(
      `${verdict.padEnd(5)} ${scenario.padEnd(32)} ${passed} passed, ${failed.length} failed${applicable ? "" : " (reference-server scenario)"}${why === "" ? "" : `  ${why}`}`
    )
    if (verdict === "ERROR") console.log(run.output.split("\n").slice(-5).join("\n"))
  }
  if (failedApplicable > 0) {
    console.log(`${failedApplicable} applicable scenario(s) failed`)
    process.exitCode = 1
  }
})

NodeRuntime.runMain(main.pipe(Effect.scoped))
