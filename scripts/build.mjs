#!/usr/bin/env node
/**
 * Compiles src/ to dist/: one JavaScript module per TypeScript file (no bundling), with linked
 * source maps (use `node --enable-source-maps` to see TypeScript positions in stack traces).
 *
 * Safe to run from several processes at once: every output is written to a temporary file and
 * renamed into place, so a process that starts while a build runs reads either the old or the new
 * file, never a half-written one. Files whose content is unchanged are not rewritten, and outputs
 * whose source is gone are removed.
 *
 * Usage: node scripts/build.mjs [--quiet]
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

/** Every .ts file under `dir` (declaration files excluded). */
const sources = (dir) =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return sources(full)
    return entry.isFile() && entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [full] : []
  })

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
 * Effect's packages re-export every module from their index (`export * as Effect from "./Effect.js"`),
 * so `import { Effect } from "effect"` makes Node load every module of the package (with `effect`:
 * fast-check too; with `@effect/platform`: the 2 MB Swagger UI page). The compiled code imports the
 * same namespaces from their own entry points (`import * as Effect from "effect/Effect"`): the same
 * module objects, without the rest. A statement naming anything else is left as it is.
 */
const barrels = [
  "effect",
  "@effect/cli",
  "@effect/platform",
  "@effect/platform-node",
  "@effect/rpc",
  "@effect/sql",
  "@effect/sql-sqlite-node",
  "@effect/experimental",
  "@effect/opentelemetry"
]

/** name → { from: module specifier, name: exported name, or undefined for a namespace } */
const barrelExports = (pkg) => {
  const dir = path.join(root, "node_modules", pkg)
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"))
  const entry = manifest.exports?.["."]?.import
  if (typeof entry !== "string") return new Map()
  const text = fs.readFileSync(path.join(dir, entry), "utf8")
  const table = new Map()
  for (const m of text.matchAll(/export \* as (\w+) from "\.\/(\w+)\.js";/g)) {
    if (manifest.exports[`./${m[2]}`] !== undefined) table.set(m[1], { from: `${pkg}/${m[2]}` })
  }
  for (const m of text.matchAll(/export \{([^}]*)\} from "\.\/(\w+)\.js";/g)) {
    if (manifest.exports[`./${m[2]}`] === undefined) continue
    for (const part of m[1]
      .split(",")
      .map((p) => p.trim())
      .filter((p) => p !== "")) {
      const [name, alias = name] = part.split(/\s+as\s+/)
      table.set(alias, { from: `${pkg}/${m[2]}`, name })
    }
  }
  return table
}
const barrelTables = new Map(barrels.filter((pkg) => fs.existsSync(path.join(root, "node_modules", pkg))).map((pkg) => [pkg, barrelExports(pkg)]))

const importFromBarrel = /^import \{([^}]*)\} from "(effect|@effect\/[\w-]+)";$/gm

const unbarrel = (code) =>
  code.replace(importFromBarrel, (statement, names, pkg) => {
    const table = barrelTables.get(pkg)
    if (table === undefined) return statement
    const parts = names
      .split(",")
      .map((p) => p.trim())
      .filter((p) => p !== "")
    const lines = []
    for (const part of parts) {
      const [name, local = name] = part.split(/\s+as\s+/)
      const target = table.get(name)
      if (target === undefined) return statement
      lines.push(
        target.name === undefined ? `import * as ${local} from "${target.from}";` : `import { ${target.name} as ${local} } from "${target.from}";`
      )
    }
    return lines.join(" ")
  })

const started = performance.now()
const entryPoints = sources(srcDir)
const result = await esbuild.build({
  entryPoints,
  outdir: outDir,
  outbase: srcDir,
  bundle: false,
  write: false,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: "linked",
  sourcesContent: false,
  logLevel: "warning",
  // The compiler options that change emitted JavaScript; esbuild reads no tsconfig file here.
  tsconfigRaw: { compilerOptions: { target: "ES2022", useDefineForClassFields: true, verbatimModuleSyntax: false } }
})

let written = 0
const outputs = new Set()
for (const file of result.outputFiles) {
  outputs.add(file.path)
  const contents = file.path.endsWith(".js") ? Buffer.from(unbarrel(file.text)) : Buffer.from(file.contents)
  if (writeAtomically(file.path, contents)) written++
}

// Outputs of deleted sources (and temporary files of builds that crashed long ago) go away.
let removed = 0
const staleBefore = Date.now() - 60_000 // Date.now: compared with file modification times
for (const file of existing(outDir)) {
  if (outputs.has(file)) continue
  if (file.endsWith(".tmp") && fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs > staleBefore) continue
  fs.rmSync(file, { force: true })
  removed++
}

if (!quiet) {
  const ms = Math.round(performance.now() - started)
  console.log(`built dist/: ${entryPoints.length} modules, ${written} written, ${removed} removed (${ms} ms)`)
}
