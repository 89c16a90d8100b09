import { assert, describe, it } from "@effect/vitest"
import type { ProjectId, TaskId, WorkerId } from "../../src/domain/Ids.js"
import { Task, WorkerInfo } from "../../src/domain/Task.js"
import { onKey } from "../../src/top/TopKeys.js"
import { initialState, MAX_TASKS, reduce, type TopAction, type TopState } from "../../src/top/TopState.js"
import { makeStore } from "../../src/top/TopStore.js"
import { ratePerSecond, sparkline, throughput, visibleTasks } from "../../src/top/TopView.js"

/** The dashboard's pure parts: the reducer, the key handling and the derived views. */

const NOW = 1_800_000_000_000

const task = (seq: number, fields: Partial<Task> = {}): Task =>
  Task.make({
    id: `tsk_${seq}` as TaskId,
    seq,
    projectId: "prj_a" as ProjectId,
    kind: "shell",
    payload: { command: `echo ${seq}` },
    priority: 0,
    runAfter: 0,
    attempts: 0,
    maxAttempts: 3,
    idempotencyKey: null,
    dependsOn: [],
    concurrencyKey: null,
    concurrencyLimit: 1,
    status: "queued",
    workerId: null,
    leaseExpiresAt: null,
    progress: null,
    result: null,
    error: null,
    createdAt: NOW - 1000,
    updatedAt: NOW - 1000,
    finishedAt: null,
    startedAt: null,
    suspect: false,
    history: [],
    ...fields
  })

const worker = (name: string, connected = true) =>
  WorkerInfo.make({ id: `wrk_${name}` as WorkerId, name, kinds: ["shell"], capacity: 2, inFlight: 0, connected, connectedAt: NOW, lastSeenAt: NOW })

const fold = (actions: ReadonlyArray<TopAction>, from: TopState = initialState("hub", NOW)) => actions.reduce(reduce, from)

const keys = (state: TopState, ...inputs: ReadonlyArray<string | { readonly [k: string]: boolean }>) =>
  inputs.reduce((s, i) => (typeof i === "string" ? onKey(s, i, {}, 10).state : onKey(s, "", i, 10).state), state)

describe("TopState.reduce", () => {
  it("keeps the newest copy of each task, whichever order snapshot and events arrive in", () => {
    const leased = task(1, { status: "leased", updatedAt: NOW - 500 })
    const done = task(1, { status: "done", updatedAt: NOW, finishedAt: NOW })
    const s = fold([
      { _tag: "TasksChanged", now: NOW, tasks: [done] },
      { _tag: "Snapshot", now: NOW, tasks: [leased, task(2)] }
    ])
    assert.strictEqual(s.tasks.get("tsk_1" as TaskId)?.status, "done", "an older snapshot does not undo an event")
    assert.strictEqual(s.tasks.size, 2)
  })

  it("counts each completion once within the last minute and forgets it after", () => {
    const done = task(1, { status: "done", updatedAt: NOW, finishedAt: NOW - 1000 })
    const s = fold([
      { _tag: "TasksChanged", now: NOW, tasks: [done] },
      { _tag: "TasksChanged", now: NOW, tasks: [done] },
      { _tag: "Snapshot", now: NOW, tasks: [done, task(2, { status: "done", finishedAt: NOW - 120_000 })] }
    ])
    assert.strictEqual(s.completions.size, 1)
    assert.closeTo(ratePerSecond(s), 1 / 60, 1e-9)
    const slots = throughput(s, 30)
    assert.strictEqual(slots[29], 1, "the newest slot holds it")
    assert.strictEqual(sparkline(slots).trim(), "█")
    assert.strictEqual(fold([{ _tag: "Tick", now: NOW + 60_000 }], s).completions.size, 0)
  })

  it("keeps at most MAX_TASKS tasks, the newest", () => {
    const many = Array.from({ length: MAX_TASKS + 50 }, (_, i) => task(i + 1))
    const s = fold([{ _tag: "Snapshot", now: NOW, tasks: many }])
    assert.strictEqual(s.tasks.size, MAX_TASKS)
    assert.isTrue(s.tasks.has(`tsk_${MAX_TASKS + 50}` as TaskId))
    assert.isFalse(s.tasks.has("tsk_1" as TaskId))
  })

  it("appends streamed agent text to the running task's output tail, and tracks sessions and the inbox", () => {
    const s = fold([
      {
        _tag: "TaskProgress",
        taskId: "tsk_1" as TaskId,
        parts: [
          { type: "text-delta", text: "hel" },
          { type: "text-delta", text: "lo" },
          { type: "tool-call", toolName: "bash" }
        ]
      },
      {
        _tag: "SessionChanged",
        session: {
          id: "ses_1" as never,
          projectId: "prj_a" as ProjectId,
          title: "t",
          agent: "build",
          model: "m",
          status: "idle",
          updatedAt: NOW,
          parentId: null
        }
      },
      { _tag: "SessionStatus", sessionId: "ses_1", status: "running" },
      { _tag: "InboxAdded", item: { id: "tsk_9", kind: "human_task", projectId: "prj_a" as ProjectId, title: "ok?", createdAt: NOW } }
    ])
    assert.strictEqual(s.output.get("tsk_1" as TaskId), "hello\n[tool bash]\n")
    assert.strictEqual(s.sessions[0]?.status, "running")
    assert.strictEqual(fold([{ _tag: "InboxResolved", id: "tsk_9" }], s).inbox.length, 0)
  })

  it("shows reconnecting with the error, and clears the error once live again", () => {
    const lost = fold([{ _tag: "Connection", connection: "reconnecting", error: "cannot reach hub" }])
    assert.strictEqual(lost.connection, "reconnecting")
    assert.strictEqual(lost.message?.text, "cannot reach hub")
    const back = fold([{ _tag: "Connection", connection: "live" }], lost)
    assert.strictEqual(back.message, null)
  })
})

describe("TopKeys.onKey", () => {
  const loaded = fold([
    {
      _tag: "Snapshot",
      now: NOW,
      tasks: [
        task(1, { status: "done", finishedAt: NOW }),
        task(2, { status: "leased" }),
        task(3, { kind: "noop" }),
        task(4, { kind: "human", status: "waiting" })
      ],
      workers: [worker("w1"), worker("w2", false)]
    }
  ])

  it("asks before cancelling, runs only after y, and refuses what does not apply", () => {
    const onRunning = keys(loaded, { downArrow: true }, { downArrow: true })
    assert.strictEqual(onRunning.selectedId, "tsk_2")
    const asked = onKey(onRunning, "c", {}, 10)
    assert.strictEqual(asked.state.confirm?._tag, "cancel")
    assert.isUndefined(asked.run)
    const yes = onKey(asked.state, "y", {}, 10)
    assert.strictEqual(yes.run?._tag, "cancel")
    assert.isNull(yes.state.confirm)
    assert.isUndefined(onKey(asked.state, "n", {}, 10).run)

    const onDone = keys(loaded, { pageDown: true })
    assert.strictEqual(onDone.selectedId, "tsk_1")
    assert.isNull(onKey(onDone, "c", {}, 10).state.confirm, "a done task is not cancelled")
    assert.strictEqual(onKey(onDone, "c", {}, 10).state.message?.error, true)
    assert.isNull(onKey(onDone, "a", {}, 10).state.confirm, "only human tasks are approved")
    const human = onKey(loaded, "a", {}, 10)
    assert.strictEqual(human.state.confirm?._tag, "approve")
  })

  it("drains the selected connected worker after Tab", () => {
    const onWorkers = keys(loaded, { tab: true })
    assert.strictEqual(onKey(onWorkers, "d", {}, 10).state.confirm?._tag, "drain")
    const gone = keys(onWorkers, { downArrow: true })
    assert.isNull(onKey(gone, "d", {}, 10).state.confirm, "a disconnected worker is not drained")
  })

  it("filters by typed text, status and kind; Esc clears the text", () => {
    const typed = keys(loaded, "/", "n", "o", "o", "p", { return: true })
    assert.isFalse(typed.typing)
    assert.deepStrictEqual(
      visibleTasks(typed).map((t) => t.seq),
      [3]
    )
    assert.strictEqual(keys(typed, "/", { escape: true }).textFilter, "")
    const byKind = keys(loaded, "k")
    assert.strictEqual(byKind.kindFilter, "agent")
    const byStatus = keys(loaded, "s", "s")
    assert.strictEqual(byStatus.statusFilter, "queued")
    assert.deepStrictEqual(
      visibleTasks(byStatus).map((t) => t.seq),
      [3]
    )
    assert.deepStrictEqual(keys(byStatus, "0").statusFilter, null)
  })

  it("quits on q, also from the help; any other key closes the help", () => {
    const help = keys(loaded, "?")
    assert.isTrue(help.help)
    assert.isFalse(keys(help, "x").help)
    assert.isTrue(onKey(help, "q", {}, 10).quit)
  })
})

describe("TopStore", () => {
  it("applies actions at once and tells listeners once per burst", async () => {
    const store = makeStore(initialState("hub", NOW), 20)
    let calls = 0
    const notified = new Promise<void>((resolve) => store.subscribe(() => ((calls += 1), resolve())))
    for (let i = 1; i <= 50; i++) store.dispatch({ _tag: "TasksChanged", now: NOW, tasks: [task(i)] })
    assert.strictEqual(store.get().tasks.size, 50)
    assert.strictEqual(store.rendered().tasks.size, 0, "not drawn before the next redraw")
    await notified
    assert.strictEqual(calls, 1)
    assert.strictEqual(store.rendered().tasks.size, 50)
    store.close()
  })
})
