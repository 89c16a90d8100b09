/**
 * Runs a benchmark by name: `npm run bench -- queue [options]` runs scripts/bench/queue.ts with the
 * remaining arguments. Without a name, lists the benchmarks.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
const available = fs
  .readdirSync(here)
  .filter((f) => f.endsWith(".ts") && f !== "run.ts" && !f.startsWith(".") && !f.startsWith("_"))
  .map((f) => f.slice(0, -3))
  .sort()

const name = process.argv[2]
if (name === undefined || !available.includes(name)) {
  console.error(`${name === undefined ? "usage" : `unknown benchmark ${name}; usage`}: npm run bench -- <name> [options]`)
  console.error(`benchmarks: ${available.join(", ")}`)
  process.exit(name === undefined ? 0 : 1)
}
process.argv.splice(2, 1)
await import(pathToFileURL(path.join(here, `${name}.ts`)).href)
