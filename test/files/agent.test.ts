import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { HubRpcClient } from "../../src/client/HubClient.js"
import type { FileVersion } from "../../src/domain/File.js"
import { type ProjectId, type SessionId, UserId } from "../../src/domain/Ids.js"
import { type ChatRequestBody, fakeOpenAI, type FakeOpenAI, lastUserText, toolResults } from "../support/FakeOpenAI.js"
import { tempDir } from "../support/Hub.js"
import { startAgentHub, watchProject } from "../support/AgentHub.js"
import { decode, withFiles } from "./support.js"

/**
 * Agent turns writing through FileService: versions authored by the turn, reverting a session,
 * changes made behind the hub's back, and edit locks between two sessions' turns.
 */

const setup = (fake: FakeOpenAI, options: Parameters<typeof startAgentHub>[1] = {}) =>
  Effect.gen(function* () {
    const hub = yield* startAgentHub(fake, options)
    const admin = yield* hub.tcpClient()
    const workspace = fs.realpathSync(tempDir("kiris-files-ws-"))
    const project = yield* admin.project.create({ name: "files", description: "", workspace })
    for (const tool of ["write", "edit"]) {
      yield* admin.permission.setRule({ projectId: project.id, tool, pattern: "*", action: "allow" })
    }
    const watch = yield* watchProject(admin, project.id)
    const files = withFiles(hub, project.id)
    const newSession = (title: string) => Effect.map(admin.session.create({ projectId: project.id, title }), (s) => s.id)
    return { hub, admin, workspace, project, watch, files, newSession }
  })

/** Runs one turn of a session whose model calls the given tools once, then answers "done". */
const turnWithTools = (
  env: {
    readonly admin: HubRpcClient
    readonly project: { readonly id: ProjectId }
    readonly watch: { readonly turns: (s: SessionId, n?: number) => Effect.Effect<ReadonlyArray<{ readonly status: string }>, Error> }
  },
  fake: FakeOpenAI,
  sessionId: SessionId,
  n: number,
  toolCalls: ReadonlyArray<{ readonly id: string; readonly name: string; readonly args: unknown }>
) =>
  Effect.gen(function* () {
    fake.script({ toolCalls }, { text: "done" })
    yield* env.admin.session.prompt({ projectId: env.project.id, sessionId, text: `turn ${n}` })
    const turns = yield* env.watch.turns(sessionId, n)
    assert.strictEqual(turns[n - 1]?.status, "completed")
  })

const isSessionVersion = (v: FileVersion | undefined, sessionId: SessionId) => v?.author.kind === "session" && v.author.sessionId === sessionId

const someone = UserId.make("usr_someone")

const lastMessageIsTool = (body: ChatRequestBody) => body.messages[body.messages.length - 1]?.role === "tool"

describe("agent turns write through FileService", () => {
  it.scopedLive("a session's write and edit are versioned, diffable and revertible; other sessions' files are left alone", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const env = yield* setup(fake)
      const { workspace, files } = env
      fs.writeFileSync(path.join(workspace, "notes.txt"), "original\n")
      const a = yield* env.newSession("a")
      const b = yield* env.newSession("b")

      yield* turnWithTools(env, fake, a, 1, [
        { id: "call_write", name: "write", args: { path: "notes.txt", content: "alpha\nbeta\ngamma\n" } },
        { id: "call_new", name: "write", args: { path: "src/created.txt", content: "new file\n" } }
      ])
      yield* turnWithTools(env, fake, a, 2, [{ id: "call_edit", name: "edit", args: { path: "notes.txt", oldString: "beta", newString: "BETA" } }])
      assert.strictEqual(fs.readFileSync(path.join(workspace, "notes.txt"), "utf8"), "alpha\nBETA\ngamma\n")
      yield* turnWithTools(env, fake, b, 1, [{ id: "call_b", name: "write", args: { path: "other.txt", content: "by b\n" } }])

      const history = yield* files((f) => f.history({ path: "notes.txt" }))
      assert.strictEqual(history.versions.length, 3)
      const [edit, write, original] = history.versions
      assert.isTrue(isSessionVersion(edit, a) && isSessionVersion(write, a))
      assert.strictEqual(original?.author.kind, "external")
      assert.strictEqual(write?.author.kind === "session" ? write.author.toolCallId : null, "call_write")
      assert.strictEqual(edit?.author.kind === "session" ? edit.author.toolCallId : null, "call_edit")
      const messageOf = (v: FileVersion | undefined) => (v?.author.kind === "session" ? v.author.messageId : undefined)
      assert.notStrictEqual(messageOf(edit), messageOf(write), "each turn's writes carry its own message")

      const diff = yield* files((f) => f.diff({ path: "notes.txt", from: write!.id, to: edit!.id }))
      assert.isFalse(diff.binary)
      assert.include(diff.unified, "-beta\n")
      assert.include(diff.unified, "+BETA\n")
      assert.notInclude(diff.unified, "-alpha")

      const events = yield* env.watch.until((es) => {
        const changed = es.filter((e) => e.event._tag === "FileChanged")
        return changed.length >= 5 ? changed : undefined
      })
      assert.isAtLeast(events.length, 5)

      const reverted = yield* files((f) => f.revertSession({ workspace, sessionId: a, author: { kind: "user", userId: someone } }))
      assert.deepStrictEqual([...reverted.restored].sort(), ["notes.txt", "src/created.txt"])
      assert.strictEqual(fs.readFileSync(path.join(workspace, "notes.txt"), "utf8"), "original\n")
      assert.isFalse(fs.existsSync(path.join(workspace, "src/created.txt")))
      assert.strictEqual(fs.readFileSync(path.join(workspace, "other.txt"), "utf8"), "by b\n")
      const created = yield* files((f) => f.history({ path: "src/created.txt" }))
      assert.isTrue(created.versions[0]?.deleted)
      assert.strictEqual(created.versions[0]?.author.kind, "revert")

      // The revert is undone by restoring the snapshot it took first.
      yield* files((f) => f.restore({ workspace, snapshotId: reverted.snapshotId, author: { kind: "user", userId: someone } }))
      assert.strictEqual(fs.readFileSync(path.join(workspace, "notes.txt"), "utf8"), "alpha\nBETA\ngamma\n")
      assert.strictEqual(fs.readFileSync(path.join(workspace, "src/created.txt"), "utf8"), "new file\n")

      // A file the session changed that another session changed after it: the revert refuses, naming it.
      const c = yield* env.newSession("c")
      yield* turnWithTools(env, fake, c, 1, [
        { id: "call_c1", name: "write", args: { path: "shared.txt", content: "by c\n" } },
        { id: "call_c2", name: "write", args: { path: "solo.txt", content: "c only\n" } }
      ])
      yield* turnWithTools(env, fake, b, 2, [{ id: "call_b2", name: "edit", args: { path: "shared.txt", oldString: "by c", newString: "by b" } }])
      const error = yield* Effect.flip(files((f) => f.revertSession({ workspace, sessionId: c, author: { kind: "user", userId: someone } })))
      assert.strictEqual(error._tag, "RevertConflict")
      assert.deepStrictEqual(error._tag === "RevertConflict" ? error.paths : [], ["shared.txt"])
      assert.strictEqual(fs.readFileSync(path.join(workspace, "solo.txt"), "utf8"), "c only\n")
      assert.strictEqual(fs.readFileSync(path.join(workspace, "shared.txt"), "utf8"), "by b\n")
    })
  )

  it.scopedLive("reverting from a message on undoes that turn and later ones, not earlier ones", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const env = yield* setup(fake)
      const { workspace, files } = env
      const s = yield* env.newSession("s")
      yield* turnWithTools(env, fake, s, 1, [{ id: "call_1", name: "write", args: { path: "x.txt", content: "turn 1\n" } }])
      yield* turnWithTools(env, fake, s, 2, [
        { id: "call_2", name: "write", args: { path: "x.txt", content: "turn 2\n" } },
        { id: "call_3", name: "write", args: { path: "y.txt", content: "only in turn 2\n" } }
      ])
      const [latest] = (yield* files((f) => f.history({ path: "x.txt" }))).versions
      const turn2 = latest?.author.kind === "session" ? latest.author.messageId : undefined
      assert.isDefined(turn2)
      const result = yield* files((f) => f.revertSession({ workspace, sessionId: s, toMessageId: turn2!, author: { kind: "user", userId: someone } }))
      assert.deepStrictEqual(result.restored, ["x.txt", "y.txt"])
      assert.strictEqual(fs.readFileSync(path.join(workspace, "x.txt"), "utf8"), "turn 1\n")
      assert.isFalse(fs.existsSync(path.join(workspace, "y.txt")))
    })
  )

  it.scopedLive("an edit on disk behind the hub's back is recorded as external; the revert refuses without force", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const env = yield* setup(fake)
      const { workspace, files } = env
      const s = yield* env.newSession("s")
      yield* turnWithTools(env, fake, s, 1, [{ id: "call_w", name: "write", args: { path: "ext.txt", content: "from the agent\n" } }])
      fs.writeFileSync(path.join(workspace, "ext.txt"), "edited in an editor, longer than before\n")

      const refused = yield* Effect.flip(files((f) => f.revertSession({ workspace, sessionId: s, author: { kind: "user", userId: someone } })))
      assert.strictEqual(refused._tag, "RevertConflict")
      assert.deepStrictEqual(refused._tag === "RevertConflict" ? refused.paths : [], ["ext.txt"])
      const history = yield* files((f) => f.history({ path: "ext.txt" }))
      assert.deepStrictEqual(
        history.versions.map((v) => v.author.kind),
        ["external", "session"]
      )
      const externalContent = yield* files((f) => f.read({ workspace, path: "ext.txt", version: history.versions[0]!.id }))
      assert.strictEqual(decode(externalContent.content), "edited in an editor, longer than before\n")
      assert.isTrue(fs.existsSync(path.join(workspace, "ext.txt")))

      const forced = yield* files((f) => f.revertSession({ workspace, sessionId: s, author: { kind: "user", userId: someone }, force: true }))
      assert.deepStrictEqual(forced.restored, ["ext.txt"])
      assert.isFalse(fs.existsSync(path.join(workspace, "ext.txt")))
      assert.isTrue(forced.versions[0]?.deleted)
    })
  )

  it.scopedLive("two sessions writing one path: the second waits, then fails FileLocked naming the holder; after the turn ends it can write", () =>
    Effect.gen(function* () {
      const fake = yield* fakeOpenAI
      const env = yield* setup(fake, { fileLockWaitMs: 300 })
      const { workspace, files } = env
      const first = yield* env.newSession("first")
      const second = yield* env.newSession("second")
      let release!: () => void
      const held = new Promise<void>((resolve) => (release = resolve))
      yield* Effect.addFinalizer(() => Effect.sync(() => release()))

      fake.scriptFor((body) => lastUserText(body) === "first writes" && !lastMessageIsTool(body), {
        toolCalls: [{ id: "call_first", name: "write", args: { path: "locked.txt", content: "first\n" } }]
      })
      // The first turn stays open (holding its lock) until `release`.
      fake.scriptFor((body) => lastUserText(body) === "first writes" && lastMessageIsTool(body), {
        slow: { text: "first done", delayMs: 0, until: held }
      })
      fake.scriptFor(
        (body) => lastUserText(body).startsWith("second writes") && !lastMessageIsTool(body),
        {
          toolCalls: [{ id: "call_second", name: "write", args: { path: "locked.txt", content: "second\n" } }]
        },
        { times: 2 }
      )
      fake.scriptFor((body) => lastUserText(body).startsWith("second writes") && lastMessageIsTool(body), { text: "second done" }, { times: 2 })

      yield* env.admin.session.prompt({ projectId: env.project.id, sessionId: first, text: "first writes" })
      yield* Effect.promise(() => fake.waitForRequests(2))
      const locks = yield* files((f) => f.locks())
      assert.deepStrictEqual(
        locks.map((l) => [l.path, l.sessionId]),
        [["locked.txt", first]]
      )

      yield* env.admin.session.prompt({ projectId: env.project.id, sessionId: second, text: "second writes (1)" })
      const [secondTurn] = yield* env.watch.turns(second, 1)
      assert.strictEqual(secondTurn?.status, "completed")
      const secondFollowUp = fake.requests.map((r) => r.body).find((b) => lastUserText(b) === "second writes (1)" && lastMessageIsTool(b))!
      const result = toolResults(secondFollowUp).find((r) => r.tool_call_id === "call_second")!
      assert.include(result.content, "FileLocked")
      assert.include(result.content, first)
      const firstFollowUp = fake.requests.map((r) => r.body).find((b) => lastUserText(b) === "first writes" && lastMessageIsTool(b))!
      assert.include(toolResults(firstFollowUp)[0]!.content, "created locked.txt")
      assert.strictEqual(fs.readFileSync(path.join(workspace, "locked.txt"), "utf8"), "first\n")

      release()
      yield* env.watch.turns(first, 1)
      assert.deepStrictEqual(yield* files((f) => f.locks()), [])
      yield* env.admin.session.prompt({ projectId: env.project.id, sessionId: second, text: "second writes (2)" })
      yield* env.watch.turns(second, 2)
      assert.strictEqual(fs.readFileSync(path.join(workspace, "locked.txt"), "utf8"), "second\n")
      const history = yield* files((f) => f.history({ path: "locked.txt" }))
      assert.deepStrictEqual(
        history.versions.map((v) => (v.author.kind === "session" ? v.author.sessionId : v.author.kind)),
        [second, first]
      )
    })
  )
})
