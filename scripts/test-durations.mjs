#!/usr/bin/env node
/**
 * Writes test/durations.json (seconds per test file) from vitest's results cache of the last run in
 * this checkout (node_modules/.vite/vitest/<hash>/results.json). The test sequencer
 * (test/support/Sequencer.ts) starts the longest files first from it when a checkout has no cache
 * of its own, as on a clean clone. Run it after a full `npx vitest run`.
 *
 * Usage: npm run test:durations
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const cacheDir = path.join(root, "node_modules", ".vite", "vitest")
const caches = fs.existsSync(cacheDir)
  ? fs
      .readdirSync(cacheDir)
      .map((d) => path.join(cacheDir, d, "results.json"))
      .filter((f) => fs.existsSync(f))
      .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)
  : []
if (caches.length === 0) {
  console.error("test-durations: no vitest results cache in node_modules/.vite/vitest; run the suite first (npx vitest run)")
  process.exit(1)
}
const { results } = JSON.parse(fs.readFileSync(caches[0], "utf8"))
const durations = {}
for (const [key, result] of results) {
  const file = key.slice(key.indexOf(":") + 1)
  if (!fs.existsSync(path.join(root, file)) || typeof result?.duration !== "number") continue
  durations[file] = Math.round(result.duration / 100) / 10
}
const sorted = Object.fromEntries(Object.entries(durations).sort(([a], [b]) => a.localeCompare(b)))
fs.writeFileSync(path.join(root, "test", "durations.json"), JSON.stringify(sorted, null, 2) + "\n")
console.log(`test-durations: wrote ${Object.keys(sorted).length} files to test/durations.json`)
