import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Scope } from "effect"
import { render } from "ink-testing-library"
import React from "react"
import { NOT_A_TERMINAL } from "../../src/cli/Top.js"
import { TopApp } from "../../src/top/TopApp.js"
import { startFeed } from "../../src/top/TopFeed.js"
import { initialState } from "../../src/top/TopState.js"
import { makeStore } from "../../src/top/TopStore.js"
import { startHub } from "../support/Hub.js"
import { runKiris } from "../support/KirisProcess.js"
import { startWorker, swarmHub } from "../worker/swarm-support.js"
import { tempDir } from "../worker/support.js"

/** `kiris top` drawn into ink-testing-library's virtual terminal at 80×24, fed by a real hub and worker. */

type Rendered = ReturnType<typeof render>

/** Waits (polling the last frame, with a deadline) until `check` holds; fails with the frame otherwise. */
const waitFrame = (r: Rendered, what: string, check: (frame: string) => boolean, timeoutMs = 30_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const frame = r.lastFrame() ?? ""
      if (check(frame)) return frame
      if (Date.now() > deadline) return yield* Effect.dieMessage(`timed out waiting for ${what}; last frame:\n${frame}`)
      yield* Effect.sleep("25 millis")
    }
  })

const press = (r: Rendered, input: string) => Effect.sync(() => r.stdin.write(input))

/** Nothing is wider than 80 columns, and the frame leaves the terminal's last row free. */
const assertFits = (frame: string) => {
  const lines = frame.split("\n")
  assert.isAtMost(lines.length, 23, frame)
  for (const l of lines) assert.isAtMost([...l].length, 80, `too wide: ${l}`)
}

/** The dashboard at 80×24 against the hub on `tcpPort` with the admin key, unmounted with the caller's scope. */
const mountTop = (hub: { readonly tcpPort: number; readonly adminKey: string }, onExit?: () => void) =>
  Effect.gen(function* () {
    const address = `127.0.0.1:${hub.tcpPort}`
    const store = makeStore(initialState(address, Date.now()))
    yield* Effect.addFinalizer(() => Effect.sync(() => store.close()))
    const feed = yield* startFeed(store, { target: { transport: "tcp", host: "127.0.0.1", port: hub.tcpPort }, hub: address, token: hub.adminKey })
    return yield* Effect.acquireRelease(
      Effect.sync(() => render(React.createElement(TopApp, { store, feed, columns: 80, rows: 24, ...(onExit === undefined ? {} : { onExit }) }))),
      (app) => Effect.sync(() => app.unmount())
    )
  })

describe("kiris top", () => {
  it.scopedLive(
    "shows counts changing as a worker runs tasks, cancels a running task after y, shows help on ?, drains the worker, quits on q",
    () =>
      Effect.gen(function* () {
        const { hub, admin, key, projectId } = yield* swarmHub
        const { proc, workerId } = yield* startWorker({ name: "topworker", tcpPort: hub.tcpPort, key, args: ["--trust-shell", "--concurrency", "2"] })
        const quit = yield* Deferred.make<void>()
        const r = yield* mountTop(hub, () => Deferred.unsafeDone(quit, Effect.void))

        const first = yield* waitFrame(
          r,
          "the live dashboard with the worker",
          (f) => f.includes("● live") && f.includes("topworker") && /done 0/.test(f)
        )
        assertFits(first)

        // counts follow the queue as the worker runs tasks
        for (const n of [1, 2, 3]) yield* admin.task.enqueue({ projectId, kind: "shell", payload: { command: `echo ${n}` }, maxAttempts: 1 })
        const counted = yield* waitFrame(r, "three tasks done", (f) => /done 3\b/.test(f))
        assert.match(counted, /shell 0\/0\/3\/0/, "by kind: open/running/done/failed")
        assertFits(counted)

        // cancel a running task: it is the newest, so the list selects it
        const sleeper = yield* admin.task.enqueue({ projectId, kind: "shell", payload: { command: "sleep 30" }, maxAttempts: 1 })
        const running = yield* waitFrame(
          r,
          "the sleep task running",
          (f) => new RegExp(`#${sleeper.seq}\\s+shell\\s+running`).test(f) && /running 1\b/.test(f)
        )
        assertFits(running)
        yield* press(r, "c")
        yield* waitFrame(r, "the confirmation prompt", (f) => f.includes(`Cancel task #${sleeper.seq} (shell, running)? y/n`))
        assert.strictEqual((yield* admin.task.get({ taskId: sleeper.id })).status, "leased", "nothing happens before y")
        yield* press(r, "y")
        yield* waitFrame(r, "the cancellation in the status bar", (f) => f.includes(`#${sleeper.seq} cancelled: now cancelled`))
        assert.strictEqual((yield* admin.task.get({ taskId: sleeper.id })).status, "cancelled")
        yield* waitFrame(r, "the cancelled count", (f) => /cancelled 1\b/.test(f))

        // the detail pane of the selected task
        yield* press(r, "\r")
        const detail = yield* waitFrame(r, "the task detail", (f) => f.includes(`#${sleeper.seq} shell cancelled`) && f.includes("payload"))
        assert.include(detail, "sleep 30")
        assertFits(detail)
        yield* press(r, "\x1b")
        yield* waitFrame(r, "the task list again", (f) => /Tasks 4\b/.test(f))

        yield* press(r, "?")
        const help = yield* waitFrame(r, "the help", (f) => f.includes("Keys (any key closes this help)"))
        assert.include(help, "drain the selected worker")
        assertFits(help)
        yield* press(r, "?")
        yield* waitFrame(r, "the help closed", (f) => !f.includes("Keys (any key closes this help)"))

        // drain the worker: Tab selects it
        yield* press(r, "\t")
        yield* press(r, "d")
        yield* waitFrame(r, "the drain prompt", (f) => f.includes(`Drain worker topworker (${workerId})?`))
        yield* press(r, "y")
        yield* waitFrame(r, "the drain reported", (f) => f.includes("worker topworker is draining"))
        assert.strictEqual((yield* proc.exited("60 seconds")).code, 0, "a drained worker exits 0")

        yield* press(r, "q")
        yield* Deferred.await(quit).pipe(Effect.timeout("10 seconds"))
      }),
    120_000
  )

  it.scopedLive(
    "filters the task list by typed text and by status, and pages through it",
    () =>
      Effect.gen(function* () {
        const { hub, admin, projectId } = yield* swarmHub
        // no worker: the tasks stay queued
        for (let i = 0; i < 30; i++) yield* admin.task.enqueue({ projectId, kind: "noop", payload: { n: i, tag: i % 3 === 0 ? "fizz" : "plain" } })
        const r = yield* mountTop(hub)
        yield* waitFrame(r, "30 tasks on pages", (f) => /Tasks 30\s+page 1\/3/.test(f))
        yield* press(r, "\x1b[6~")
        yield* waitFrame(r, "the second page", (f) => /page 2\/3/.test(f))
        yield* press(r, "/")
        for (const c of "fizz") yield* press(r, c)
        yield* press(r, "\r")
        const filtered = yield* waitFrame(r, "the fizz tasks", (f) => /Tasks 10 \(\/fizz\)/.test(f))
        assertFits(filtered)
        yield* press(r, "s")
        yield* press(r, "s")
        yield* waitFrame(r, "the queued fizz tasks", (f) => /Tasks 10 \(status:queued \/fizz\)/.test(f))
        yield* press(r, "s")
        yield* waitFrame(
          r,
          "no fizz task in the next status",
          (f) => /Tasks 0 \(status:\w+ \/fizz\)/.test(f) && f.includes("no task matches the filters")
        )
        yield* press(r, "0")
        yield* waitFrame(r, "every task again", (f) => /Tasks 30\s+page \d\/3/.test(f))
      }),
    60_000
  )

  it.scopedLive(
    "approves a human task from the inbox view after y",
    () =>
      Effect.gen(function* () {
        const { hub, admin, projectId } = yield* swarmHub
        const human = yield* admin.task.enqueue({ projectId, kind: "human", payload: { question: "ship it?" } })
        const r = yield* mountTop(hub)
        yield* waitFrame(r, "live", (f) => f.includes("● live"))
        yield* press(r, "3")
        const inbox = yield* waitFrame(r, "the inbox with the human task", (f) => f.includes("Inbox 1 waiting") && /human\s+swarm/.test(f))
        assertFits(inbox)
        yield* press(r, "a")
        yield* waitFrame(r, "the approval prompt", (f) => f.includes(`Approve human task ${human.id}? y/n`))
        yield* press(r, "y")
        yield* waitFrame(r, "the inbox emptied", (f) => f.includes("Inbox 0 waiting") && f.includes(`${human.id} approved`))
        assert.strictEqual((yield* admin.task.get({ taskId: human.id })).status, "done")
      }),
    60_000
  )

  it.scopedLive(
    "shows reconnecting while the hub is down and goes live again once it is back",
    () =>
      Effect.gen(function* () {
        const dataDir = tempDir()
        const first = yield* Scope.make()
        const hub = yield* startHub({ dataDir }).pipe(Scope.extend(first))
        const r = yield* mountTop(hub)
        yield* waitFrame(r, "live", (f) => f.includes("● live"))
        yield* Scope.close(first, Exit.void)
        const down = yield* waitFrame(r, "reconnecting", (f) => f.includes("reconnecting…") && !f.includes("● live"))
        assertFits(down)
        // the same data dir and port: the same admin key works again
        const again = yield* startHub({ dataDir, tcpPort: hub.tcpPort })
        const admin = yield* again.tcpClient()
        const project = yield* admin.project.create({ name: "after" })
        yield* admin.task.enqueue({ projectId: project.id, kind: "noop", payload: { after: true } })
        yield* waitFrame(r, "live again with the new task", (f) => f.includes("● live") && f.includes('{"after":true}'), 60_000)
      }),
    120_000
  )

  it.live("kiris top on a non-terminal prints why and exits 1", () =>
    Effect.gen(function* () {
      const run = yield* runKiris(["top", "--hub", "127.0.0.1:1", "--token", "x"], { cwd: tempDir("kiris-top-") })
      assert.strictEqual(run.code, 1)
      assert.strictEqual(run.stderr.trim(), NOT_A_TERMINAL)
      assert.strictEqual(run.stdout, "")
    })
  )
})
