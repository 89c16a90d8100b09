import { assert, describe, it as plainIt, layer } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { globMatcher } from "../../src/glob/Glob.js"
import { GrepTool } from "../../src/tools/builtin/GrepTool.js"
import type { ToolContext } from "../../src/tools/Tool.js"
import type { WorkspaceFence } from "../../src/tools/WorkspaceFence.js"
import { ToolHarness } from "./Harness.js"

const DIRS = 40
const FILES_PER_DIR = 50

/** A tree of DIRS × FILES_PER_DIR small files, each with one `needle` line. */
const bigTree = (root: string) => {
  for (let d = 0; d < DIRS; d++) {
    const dir = path.join(root, `d${String(d).padStart(2, "0")}`)
    fs.mkdirSync(dir, { recursive: true })
    for (let f = 0; f < FILES_PER_DIR; f++) fs.writeFileSync(path.join(dir, `f${f}.txt`), `line one\nneedle ${d}/${f}\nline three\n`)
  }
}

/** A fence that hides nothing but counts the entries the walk looks at and opens `started` at the first. */
const watchingFence = (started: Deferred.Deferred<void>) => {
  let seen = 0
  const fence: WorkspaceFence = {
    check: () => undefined,
    hides: () => {
      seen += 1
      Deferred.unsafeDone(started, Exit.void)
      return false
    }
  }
  return { fence, seen: () => seen }
}

layer(ToolHarness.allowAll, { excludeTestServices: true })("tool walks", (it) => {
  const grepIn = (dir: string, fence: WorkspaceFence, pattern = "needle") =>
    Effect.gen(function* () {
      const h = yield* ToolHarness
      const ctx: ToolContext = { ...h.ctx, fence }
      const prepared = yield* GrepTool.prepare({ pattern, path: dir }, ctx)
      return yield* h.inProject(prepared.run)
    })

  it.effect("a long grep does not block another request on the hub", () =>
    Effect.gen(function* () {
      const h = yield* ToolHarness
      const dir = "big-a"
      bigTree(path.join(h.workspace, dir))
      const started = yield* Deferred.make<void>()
      const { fence } = watchingFence(started)
      const finished: Array<string> = []
      const grep = yield* grepIn(dir, fence, "^never matches$").pipe(
        Effect.tap(() => finished.push("grep")),
        Effect.fork
      )
      // Once the walk is under way, a request over the hub's TCP socket must complete before it ends.
      yield* Deferred.await(started)
      yield* h.client.user.whoami()
      finished.push("whoami")
      const result = yield* Fiber.join(grep)
      assert.deepStrictEqual(finished, ["whoami", "grep"])
      assert.strictEqual(result.output, "no matches")
    })
  )

  it.effect("an interrupted grep stops walking", () =>
    Effect.gen(function* () {
      const h = yield* ToolHarness
      const dir = "big-b"
      bigTree(path.join(h.workspace, dir))
      const started = yield* Deferred.make<void>()
      const watch = watchingFence(started)
      const grep = yield* Effect.fork(grepIn(dir, watch.fence))
      yield* Deferred.await(started)
      yield* Fiber.interrupt(grep)
      const atInterrupt = watch.seen()
      // A few more I/O rounds: a walk still running would keep looking at entries.
      for (let i = 0; i < 5; i++) yield* Effect.promise(() => fs.promises.readdir(path.join(h.workspace, dir)))
      assert.strictEqual(watch.seen(), atInterrupt)
      assert.isBelow(atInterrupt, DIRS * (FILES_PER_DIR + 1))
    })
  )

  it.effect("grep reads files concurrently yet reports matches in walk order, capped", () =>
    Effect.gen(function* () {
      const h = yield* ToolHarness
      const dir = "big-c"
      bigTree(path.join(h.workspace, dir))
      const started = yield* Deferred.make<void>()
      const result = yield* grepIn(dir, watchingFence(started).fence, "needle 0/")
      const lines = result.output.split("\n")
      assert.deepStrictEqual(
        lines,
        Array.from({ length: FILES_PER_DIR }, (_, f) => `${dir}/d00/f${f}.txt:2:needle 0/${f}`).sort((a, b) => (a < b ? -1 : 1))
      )
      const capped = yield* grepIn(dir, watchingFence(started).fence)
      assert.strictEqual(capped.metadata?.["count"], 200)
      assert.match(capped.output, /\(stopped after 200 matches/)
      assert.strictEqual(capped.output.split("\n")[0], `${dir}/d00/f0.txt:2:needle 0/0`)
    })
  )

  it.effect("grep skips FIFOs instead of waiting on them", () =>
    Effect.gen(function* () {
      const h = yield* ToolHarness
      const dir = path.join(h.workspace, "fifo")
      fs.mkdirSync(dir)
      fs.writeFileSync(path.join(dir, "a.txt"), "needle\n")
      const made = spawnSync("mkfifo", [path.join(dir, "pipe")])
      if (made.status !== 0) return
      const out = yield* h.exec("grep", { pattern: "needle", path: "fifo" })
      assert.deepStrictEqual(out, { ok: true, output: "fifo/a.txt:1:needle", metadata: { count: 1, truncated: false } })
    })
  )
})

describe("globMatcher (the patterns of glob, grep's include and permission rules)", () => {
  const cases: ReadonlyArray<readonly [pattern: string, path: string, matches: boolean]> = [
    ["*", ".env", true],
    ["*.md", "README.md", true],
    ["*.md", "docs/guide.md", false],
    ["**/*.ts", "a.ts", true],
    ["**/*.ts", "src/.hidden/x.ts", true],
    ["src/**", "src/gen/x.ts", true],
    ["*.{ts,js}", "b.js", true],
    ["a/[!b]*", "a/c", true],
    ["a/[!b]*", "a/bx", false],
    ["a/[^b]*", "a/bx", false],
    ["!x", "!x", true],
    ["!x", "y", false],
    ["@(a)", "@(a)", true],
    ["@(a)", "a", false]
  ]
  plainIt("matches dotfiles, reads `[!...]` as negation, and takes a leading `!` and extglob syntax literally", () => {
    const got = cases.map(([pattern, p]) => [pattern, p, globMatcher(pattern)(p)] as const)
    assert.deepStrictEqual(got, cases)
  })
})
