#!/usr/bin/env node
// Runs the compiled program (dist/, built from src/ by `npm run build`, which `npm install` runs).
import { existsSync } from "node:fs"

const main = new URL("../dist/main.js", import.meta.url)
if (!existsSync(main)) {
  process.stderr.write("kiris: the compiled program (dist/main.js) is missing; run `npm run build` first\n")
  process.exit(1)
}
await import(main.href)
