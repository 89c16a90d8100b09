import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { ToolOutput } from "../../src/domain/ToolOutput.js"
import { tempDir } from "../support/Hub.js"
import { ToolHarness } from "./Harness.js"

const ok = (out: ToolOutput): string => {
  if (!out.ok) assert.fail(`expected success, got error: ${out.error}`)
  return out.output
}
const err = (out: ToolOutput): string => {
  if (out.ok) assert.fail(`expected an error, got output: ${out.output}`)
  return out.error
}

layer(ToolHarness.allowAll, { excludeTestServices: true })("built-in tools", (it) => {
  const setup = (files: Record<string, string | Buffer>) =>
    Effect.map(ToolHarness, (h) => {
      const dir = fs.mkdtempSync(path.join(h.workspace, "case-"))
      for (const [name, content] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
        fs.writeFileSync(path.join(dir, name), content)
      }
      return { h, dir: path.basename(dir), abs: dir }
    })

  describe("read", () => {
    it.effect("numbers lines and honours offset/limit", () =>
      Effect.gen(function* () {
        const { h, dir } = yield* setup({ "f.txt": "one\ntwo\nthree\nfour\n" })
        assert.strictEqual(ok(yield* h.exec("read", { path: `${dir}/f.txt` })), "     1\tone\n     2\ttwo\n     3\tthree\n     4\tfour")
        const range = ok(yield* h.exec("read", { path: `${dir}/f.txt`, offset: 2, limit: 2 }))
        assert.strictEqual(range, "     2\ttwo\n     3\tthree\n(more lines follow: showed lines 2-3 of 4; use offset=4 to continue)")
        assert.match(err(yield* h.exec("read", { path: `${dir}/f.txt`, offset: 9 })), /past the end/)
      })
    )

    it.effect("caps the output size with a note", () =>
      Effect.gen(function* () {
        const line = "x".repeat(1000)
        const { h, dir } = yield* setup({ "big.txt": Array.from({ length: 200 }, () => line).join("\n") })
        const out = ok(yield* h.exec("read", { path: `${dir}/big.txt` }))
        assert.isBelow(out.length, 52_000)
        assert.match(out, /\(output truncated at 50000 characters: showed lines 1-\d+ of 200; use offset=\d+ to continue\)$/)
      })
    )

    it.effect("refuses binary files, directories and missing files", () =>
      Effect.gen(function* () {
        const { h, dir } = yield* setup({ "b.bin": Buffer.from([0x50, 0x4b, 0x00, 0x01, 0x02]) })
        assert.match(err(yield* h.exec("read", { path: `${dir}/b.bin` })), /binary file/)
        assert.match(err(yield* h.exec("read", { path: dir })), /is a directory/)
        assert.match(err(yield* h.exec("read", { path: `${dir}/nope.txt` })), /file not found/)
      })
    )
  })

  describe("write", () => {
    it.effect("creates parent directories and overwrites", () =>
      Effect.gen(function* () {
        const { h, dir, abs } = yield* setup({})
        assert.match(ok(yield* h.exec("write", { path: `${dir}/a/b/c.txt`, content: "hello" })), /^created .*c\.txt \(5 bytes\)$/)
        assert.strictEqual(fs.readFileSync(path.join(abs, "a/b/c.txt"), "utf8"), "hello")
        assert.match(ok(yield* h.exec("write", { path: `${dir}/a/b/c.txt`, content: "bye" })), /^overwrote/)
        assert.strictEqual(fs.readFileSync(path.join(abs, "a/b/c.txt"), "utf8"), "bye")
      })
    )
  })

  describe("edit", () => {
    it.effect("replaces a unique match", () =>
      Effect.gen(function* () {
        const { h, dir, abs } = yield* setup({ "e.ts": "const a = 1\nconst b = 2\n" })
        const out = ok(yield* h.exec("edit", { path: `${dir}/e.ts`, oldString: "const b = 2", newString: "const b = 3" }))
        assert.strictEqual(out, `replaced 1 occurrence in ${dir}/e.ts`)
        assert.strictEqual(fs.readFileSync(path.join(abs, "e.ts"), "utf8"), "const a = 1\nconst b = 3\n")
      })
    )

    it.effect("refuses zero and several matches, unless replaceAll", () =>
      Effect.gen(function* () {
        const { h, dir, abs } = yield* setup({ "e.ts": "x = 1\nx = 1\n" })
        assert.match(err(yield* h.exec("edit", { path: `${dir}/e.ts`, oldString: "y = 1", newString: "y = 2" })), /was not found in/)
        assert.match(
          err(yield* h.exec("edit", { path: `${dir}/e.ts`, oldString: "x = 1", newString: "x = 2" })),
          /occurs 2 times in .*include more surrounding context/
        )
        assert.strictEqual(fs.readFileSync(path.join(abs, "e.ts"), "utf8"), "x = 1\nx = 1\n")
        ok(yield* h.exec("edit", { path: `${dir}/e.ts`, oldString: "x = 1", newString: "x = $&2", replaceAll: true }))
        assert.strictEqual(fs.readFileSync(path.join(abs, "e.ts"), "utf8"), "x = $&2\nx = $&2\n")
      })
    )
  })

  describe("list", () => {
    it.effect("lists a directory, skipping .git and node_modules", () =>
      Effect.gen(function* () {
        const { h, dir, abs } = yield* setup({ "b.txt": "", "sub/c.txt": "", ".git/HEAD": "", "node_modules/x/i.js": "" })
        fs.symlinkSync(path.join(abs, "b.txt"), path.join(abs, "link"))
        assert.strictEqual(ok(yield* h.exec("list", { path: dir })), "b.txt\nlink@\nsub/")
        assert.strictEqual(ok(yield* h.exec("list", { path: dir, depth: 2 })), "b.txt\nlink@\nsub/\nsub/c.txt")
      })
    )
  })

  describe("glob", () => {
    it.effect("matches patterns below a directory", () =>
      Effect.gen(function* () {
        const { h, dir } = yield* setup({ "a.ts": "", "b.js": "", "src/c.ts": "", "src/d/e.ts": "", "node_modules/f.ts": "" })
        assert.strictEqual(ok(yield* h.exec("glob", { pattern: "*.ts", path: dir })), `${dir}/a.ts`)
        assert.strictEqual(
          ok(yield* h.exec("glob", { pattern: "**/*.ts", path: dir })),
          [`${dir}/a.ts`, `${dir}/src/c.ts`, `${dir}/src/d/e.ts`].join("\n")
        )
        assert.strictEqual(ok(yield* h.exec("glob", { pattern: `${dir}/*.{ts,js}` })), `${dir}/a.ts\n${dir}/b.js`)
        assert.strictEqual(ok(yield* h.exec("glob", { pattern: "*.md", path: dir })), "no files matched")
      })
    )
  })

  describe("grep", () => {
    it.effect("reports file:line:text with an include filter and a cap", () =>
      Effect.gen(function* () {
        const many = Array.from({ length: 300 }, (_, i) => `hit ${i}`).join("\n")
        const { h, dir } = yield* setup({ "a.ts": "foo\nbar foo\n", "b.md": "foo\n", "sub/c.ts": "nothing\nFOO\n", "many.txt": many })
        assert.strictEqual(ok(yield* h.exec("grep", { pattern: "foo", path: dir, include: "*.ts" })), `${dir}/a.ts:1:foo\n${dir}/a.ts:2:bar foo`)
        assert.strictEqual(
          ok(yield* h.exec("grep", { pattern: "^foo$", path: dir, include: "*.ts", ignoreCase: true })),
          `${dir}/a.ts:1:foo\n${dir}/sub/c.ts:2:FOO`
        )
        const capped = ok(yield* h.exec("grep", { pattern: "^hit", path: `${dir}/many.txt` }))
        assert.strictEqual(capped.split("\n").length, 201)
        assert.match(capped, /stopped after 200 matches/)
        assert.match(err(yield* h.exec("grep", { pattern: "(", path: dir })), /invalid regular expression/)
      })
    )
  })

  describe("confinement", () => {
    it.effect("every file tool refuses traversal, outside absolute paths and symlinks leading out", () =>
      Effect.gen(function* () {
        const { h, dir, abs } = yield* setup({})
        const outside = tempDir("kiris-outside-")
        fs.writeFileSync(path.join(outside, "secret.txt"), "secret")
        fs.symlinkSync(outside, path.join(abs, "escape"))
        const attempts: Array<[string, Record<string, unknown>]> = [
          ["read", { path: "../x" }],
          ["read", { path: path.join(outside, "secret.txt") }],
          ["read", { path: `${dir}/escape/secret.txt` }],
          ["write", { path: "../../evil.txt", content: "x" }],
          ["write", { path: `${dir}/escape/new.txt`, content: "x" }],
          ["edit", { path: `${dir}/escape/secret.txt`, oldString: "secret", newString: "owned" }],
          ["list", { path: ".." }],
          ["list", { path: `${dir}/escape` }],
          ["glob", { pattern: "*", path: "/etc" }],
          ["grep", { pattern: "secret", path: `${dir}/escape` }]
        ]
        for (const [tool, input] of attempts) {
          assert.match(err(yield* h.exec(tool, input)), /escapes the workspace|outside the workspace/, `${tool} ${JSON.stringify(input)}`)
        }
        assert.strictEqual(fs.readFileSync(path.join(outside, "secret.txt"), "utf8"), "secret")
        assert.isFalse(fs.existsSync(path.join(outside, "new.txt")))
      })
    )
  })
})
