#!/usr/bin/env node
/**
 * Bundles src/main.ts and its dependencies into dist/: main.js plus chunks (one per lazily loaded
 * command, and what they share), with linked source maps (use `node --enable-source-maps` to see
 * TypeScript positions in stack traces). One file per part instead of one per module halves the
 * start-up time of every command: Node 20 spends most of it resolving, opening and linking modules.
 *
 * Safe to run from several processes at once: every output is written to a temporary file and
 * renamed into place, so a process that starts while a build runs reads either the old or the new
 * file, never a half-written one. Files whose content is unchanged are not rewritten; outputs no
 * longer produced are removed (chunks after a day, see below).
 *
 * Usage: node scripts/build.mjs [--quiet] [--force]   (--force bundles even when dist/ is up to date)
 */
import * as esbuild from "esbuild"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const srcDir = path.join(root, "src")
const outDir = path.join(root, "dist")
const quiet = process.argv.includes("--quiet")

/** Every file under `dir`, or none when it does not exist. */
const existing = (dir) => {
  if (!fs.existsSync(dir)) return []
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    return entry.isDirectory() ? existing(full) : [full]
  })
}

const sameContent = (file, contents) => {
  try {
    const current = fs.readFileSync(file)
    return current.length === contents.length && current.equals(contents)
  } catch {
    return false
  }
}

/** Writes `contents` to `file` through a temporary file and a rename, unless it already holds them. */
const writeAtomically = (file, contents) => {
  if (sameContent(file, contents)) return false
  fs.mkdirSync(path.dirname(file), { recursive: true })
  const temp = `${file}.${process.pid}.${crypto.randomBytes(4).toString("hex")}.tmp`
  try {
    fs.writeFileSync(temp, contents)
    fs.renameSync(temp, file)
  } catch (error) {
    fs.rmSync(temp, { force: true })
    throw error
  }
  return true
}

/**
 * Packages left out of the bundle, loaded from node_modules at run time: native addons, optional
 * peers that are not installed (imported only on paths we never take), and CommonJS-only packages
 * that import their own parts dynamically (a bundled dynamic import of CommonJS code yields only a
 * default export, so their named exports would be missing).
 */
const external = ["better-sqlite3", "pg-native", "react-devtools-core", "@vercel/oidc"]

const started = performance.now()

/**
 * What the bundle is made of: the path, size and modification time of every source file, the
 * lockfile and this script. When it matches the stamp of the last build, dist/ is up to date and
 * nothing is bundled (`npm start`, `npm test` and `npm run kiris` build first; this keeps that free).
 */
const inputsStamp = () => {
  const hash = crypto.createHash("sha256")
  const files = [...existing(srcDir), path.join(root, "package-lock.json"), fileURLToPath(import.meta.url)].sort()
  for (const file of files) {
    const stat = fs.statSync(file, { throwIfNoEntry: false })
    hash.update(`${path.relative(root, file)} ${stat?.size ?? -1} ${stat?.mtimeMs ?? -1}\n`)
  }
  return hash.digest("hex")
}
const stampFile = path.join(outDir, ".inputs")
const stamp = inputsStamp()
if (!process.argv.includes("--force") && fs.existsSync(path.join(outDir, "main.js")) && sameContent(stampFile, Buffer.from(stamp))) {
  if (!quiet) console.log(`dist/ is up to date (${Math.round(performance.now() - started)} ms)`)
  process.exit(0)
}

const result = await esbuild.build({
  entryPoints: [path.join(srcDir, "main.ts")],
  outdir: outDir,
  bundle: true,
  // each command's modules (imported dynamically by src/cli/Cli.ts) become chunks of their own, so
  // `kiris --help` or a client command never parses the hub, SQLite or the AI SDK
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  external,
  write: false,
  metafile: true,
  format: "esm",
  platform: "node",
  // packages with both builds (OpenTelemetry) give their ES modules, whose dynamic imports stay
  // dynamic imports; their CommonJS builds would lose their named exports (see `external`)
  mainFields: ["module", "main"],
  target: "node20",
  sourcemap: "linked",
  sourcesContent: false,
  logLevel: "warning",
  // CommonJS dependencies call require() for Node's built-ins; an ES module has none of its own
  banner: { js: 'import { createRequire as __kirisCreateRequire } from "node:module"; const require = __kirisCreateRequire(import.meta.url);' },
  // The compiler options that change emitted JavaScript; esbuild reads no tsconfig file here.
  tsconfigRaw: { compilerOptions: { target: "ES2022", useDefineForClassFields: true, verbatimModuleSyntax: false } }
})

/** The npm package an input path belongs to (`node_modules/@scope/name/…` → `@scope/name`), if any. */
const packageOf = (input) => {
  const m = input.match(/(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//g)
  if (m === null) return undefined
  return m[m.length - 1].replace(/^\/?node_modules\//, "").replace(/\/$/, "")
}

/** dist/chunks.json: the npm packages bundled into each output file, read by the start-up test. */
const chunkPackages = {}
for (const [output, meta] of Object.entries(result.metafile.outputs)) {
  if (!output.endsWith(".js")) continue
  const packages = new Set(
    Object.keys(meta.inputs)
      .map(packageOf)
      .filter((p) => p !== undefined)
  )
  chunkPackages[path.relative(outDir, path.resolve(root, output)).split(path.sep).join("/")] = [...packages].sort()
}
const manifest = { path: path.join(outDir, "chunks.json"), contents: Buffer.from(JSON.stringify(chunkPackages, null, 1) + "\n") }

// Chunks first and the entry point last, so a process starting while this runs loads either the old
// program or the new one whole.
const entry = path.join(outDir, "main.js")
const ordered = [...result.outputFiles].sort((a, b) => Number(a.path.startsWith(entry)) - Number(b.path.startsWith(entry)))
let written = 0
const outputs = new Set([manifest.path])
for (const file of ordered) {
  outputs.add(file.path)
  if (writeAtomically(file.path, Buffer.from(file.contents))) written++
}
if (writeAtomically(manifest.path, manifest.contents)) written++
writeAtomically(stampFile, Buffer.from(stamp))
outputs.add(stampFile)

// Files no build produces any more go away. Chunks of earlier builds stay for a day, because a
// process started before this build may still import them lazily; so do temporary files of a build
// running right now.
let removed = 0
const now = Date.now() // Date.now: compared with file modification times
const keepFor = (file) => (file.endsWith(".tmp") ? 60_000 : file.startsWith(path.join(outDir, "chunks") + path.sep) ? 86_400_000 : 0)
for (const file of existing(outDir)) {
  if (outputs.has(file)) continue
  const age = now - (fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0)
  if (age < keepFor(file)) continue
  fs.rmSync(file, { force: true })
  removed++
}

/** Removes the directories under `dir` left empty (the per-module layout of older builds). */
const pruneEmpty = (dir) => {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue
    const full = path.join(dir, entry.name)
    pruneEmpty(full)
    if (fs.readdirSync(full).length === 0) fs.rmdirSync(full)
  }
}
pruneEmpty(outDir)

if (!quiet) {
  const ms = Math.round(performance.now() - started)
  const chunks = Object.keys(chunkPackages).length
  console.log(`built dist/: main.js and ${chunks - 1} chunks, ${written} written, ${removed} removed (${ms} ms)`)
}
