import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { makeHubClient } from "/work/main/src/client/HubClient.js"

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kiris-lat-"))
const program = Effect.gen(function* () {
  const child = spawn(process.execPath, ["bin/kiris.js", "serve", "--data-dir", dataDir, "--port", "0", "--tcp-port", "0"], { stdio: ["ignore", "pipe", "inherit"], cwd: "/work/main" })
  yield* Effect.addFinalizer(() => Effect.sync(() => child.kill()))
  const port = yield* Effect.async<number>((resume) => { let out = ""; child.stdout.on("data", (d) => { out += d; const m = out.match(/tcp=[\d.]+:(\d+)/); if (m) resume(Effect.succeed(Number(m[1]))) }) })
  const key = fs.readFileSync(path.join(dataDir, "admin.key"), "utf8").trim()
  const c = yield* makeHubClient({ transport: "tcp", host: "127.0.0.1", port }, key)
  const p = yield* c.project.create({ name: "x", description: "" })
  const { Queue, Stream, Deferred } = yield* Effect.promise(() => import("effect"))
  const pushes = yield* Queue.unbounded<[number, string]>()
  yield* c.worker.connect({ name: "l", kinds: ["chat"], capacity: 1 }).pipe(Stream.runForEach((x) => Queue.offer(pushes, [performance.now(), x._tag])), Effect.forkScoped)
  yield* Queue.take(pushes); yield* Queue.take(pushes)
  const d: Array<string> = []
  for (let i = 0; i < 20; i++) {
    const s = performance.now()
    yield* c.task.enqueue({ projectId: p.id, kind: "chat", payload: { prompt: "x" } })
    const e = performance.now()
    const [at] = yield* Queue.take(pushes)
    const l0 = performance.now()
    yield* c.task.lease({ workerId: "x" as any, kinds: ["chat"], max: 5 })
    d.push(`enq=${(e - s).toFixed(1)} push=${(at - s).toFixed(1)} lease=${(performance.now() - l0).toFixed(1)}`)
  }
  console.log(d.join("\n"))
  for (const what of ["whoami", "stats", "enqueue"] as const) {
    const ts: Array<number> = []
    let id: any
    for (let i = 0; i < 50; i++) {
      const s = performance.now()
      if (what === "whoami") yield* c.user.whoami()
      else if (what === "stats") yield* c.task.stats({ projectId: p.id })
      else if (what === "enqueue") id = (yield* c.task.enqueue({ projectId: p.id, kind: "noop", payload: {} })).id
      else yield* c.task.get({ taskId: id })
      ts.push(performance.now() - s)
    }
    ts.sort((a, b) => a - b)
    console.log(what, "p50", ts[25]!.toFixed(2), "p90", ts[45]!.toFixed(2))
  }
})
Effect.runPromise(Effect.scoped(program))
