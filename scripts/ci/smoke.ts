/**
 * Smoke test of the compiled program on another Node binary: starts a hub (`kiris serve`, temp data
 * dir, ports 0) whose model is the fake OpenAI-compatible server of the tests, a worker, runs a
 * `noop` and a `chat` task through it, and one `kiris chat -p` turn; every kiris process runs on
 * the Node given with `--node`. Exits 0 and prints one line when all of it worked.
 *
 * Usage: tsx scripts/ci/smoke.ts --node /path/to/node
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { startFakeOpenAI } from "../../test/support/FakeOpenAI.js"

const nodeFlag = process.argv.indexOf("--node")
const node = nodeFlag === -1 ? process.execPath : process.argv[nodeFlag + 1]!
const root = fileURLToPath(new URL("../..", import.meta.url))
const bin = path.join(root, "bin", "kiris.js")
const STEP_TIMEOUT_MS = 60_000

const children = new Set<ChildProcess>()

interface Running {
  readonly child: ChildProcess
  readonly output: () => string
  readonly waitFor: (pattern: RegExp) => Promise<RegExpMatchArray>
  readonly exited: Promise<number | null>
}

const start = (args: ReadonlyArray<string>, env: Record<string, string>, cwd: string): Running => {
  const child = spawn(node, [bin, ...args], { cwd, env: { ...process.env, NO_COLOR: "1", ...env }, stdio: ["pipe", "pipe", "pipe"] })
  children.add(child)
  let output = ""
  const listeners = new Set<() => void>()
  const onData = (d: Buffer) => {
    output += d.toString("utf8")
    for (const l of listeners) l()
  }
  child.stdout!.on("data", onData)
  child.stderr!.on("data", onData)
  const exited = new Promise<number | null>((resolve) =>
    child.on("close", (code) => {
      children.delete(child)
      for (const l of listeners) l()
      resolve(code)
    })
  )
  const waitFor = (pattern: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`timed out waiting for ${pattern} from kiris ${args.join(" ")}:\n${output}`)), STEP_TIMEOUT_MS)
      const check = () => {
        const m = output.match(pattern)
        if (m) return done(undefined, m)
        if (child.exitCode !== null || child.signalCode !== null) done(new Error(`kiris ${args.join(" ")} ended before ${pattern}:\n${output}`))
      }
      const done = (error?: Error, m?: RegExpMatchArray) => {
        clearTimeout(timer)
        listeners.delete(check)
        if (error) reject(error)
        else resolve(m!)
      }
      listeners.add(check)
      check()
    })
  return { child, output: () => output, waitFor, exited }
}

/** Runs a kiris command to completion; fails unless it exits 0. */
const run = async (args: ReadonlyArray<string>, env: Record<string, string>, cwd: string): Promise<string> => {
  const p = start(args, env, cwd)
  p.child.stdin!.end()
  const timer = setTimeout(() => p.child.kill("SIGKILL"), STEP_TIMEOUT_MS)
  const code = await p.exited
  clearTimeout(timer)
  if (code !== 0) throw new Error(`kiris ${args.join(" ")} exited ${code}:\n${p.output()}`)
  return p.output()
}

const stop = async (p: Running) => {
  p.child.kill("SIGTERM")
  const timer = setTimeout(() => p.child.kill("SIGKILL"), 30_000)
  await p.exited
  clearTimeout(timer)
}

const main = async () => {
  const version = (
    await new Promise<string>((resolve, reject) => {
      const c = spawn(node, ["--version"], { stdio: ["ignore", "pipe", "inherit"] })
      let out = ""
      c.stdout.on("data", (d: Buffer) => (out += d.toString()))
      c.on("error", reject)
      c.on("close", () => resolve(out))
    })
  ).trim()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kiris-smoke-"))
  const fake = await startFakeOpenAI()
  try {
    fake.scriptFor((body) => JSON.stringify(body.messages).includes("smoke chat turn"), { text: "smoke answer" }, { times: Infinity })
    const modelEnv = { KIRIS_MODEL: "openai-compatible:fake", KIRIS_OPENAI_COMPATIBLE_BASE_URL: fake.baseURL, KIRIS_LLM_MAX_RETRIES: "0" }
    const dataDir = path.join(dir, "data")
    const hub: Running = start(["serve", "--data-dir", dataDir, "--port", "0", "--tcp-port", "0"], modelEnv, dir)
    const listening = await hub.waitFor(/^kiris listening http=(\S+) tcp=(\S+)$/m)
    const [, httpUrl, tcp] = listening
    const adminKey = fs.readFileSync(path.join(dataDir, "admin.key"), "utf8").trim()
    const client = ["--hub", tcp!, "--token", adminKey]

    const created = JSON.parse(await run(["key", "create", "smoke-worker", "--scope", "worker", "--json", ...client], {}, dir)) as { key: string }
    const worker = start(["worker", "--hub", tcp!, "--token", created.key, "--name", "smoke", "--data-dir", path.join(dir, "worker")], modelEnv, dir)
    await worker.waitFor(/^kiris worker smoke: /m)

    const noop = await run(["enqueue", "--kind", "noop", "--wait", "smoke noop", ...client], {}, dir)
    if (!noop.includes("smoke noop")) throw new Error(`the noop task did not echo its payload:\n${noop}`)
    const chatTask = await run(["enqueue", "--kind", "chat", "--wait", "smoke chat turn (task)", ...client], {}, dir)
    if (!chatTask.includes("smoke answer")) throw new Error(`the chat task did not return the model's answer:\n${chatTask}`)
    const chat = await run(["chat", "--hub-http", httpUrl!, "--token", adminKey, "-p", "smoke chat turn (session)"], {}, dir)
    if (!chat.includes("smoke answer")) throw new Error(`kiris chat did not print the model's answer:\n${chat}`)

    await stop(worker)
    await stop(hub)
    console.log(`smoke on Node ${version}: hub, worker, noop and chat tasks, chat turn: ok`)
  } finally {
    for (const c of children) c.kill("SIGKILL")
    await fake.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`smoke on ${node} failed: ${e instanceof Error ? e.message : String(e)}`)
    process.exit(1)
  }
)
