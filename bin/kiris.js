#!/usr/bin/env node
// Runs the compiled program (dist/, built from src/ by `npm run build`, which `npm install` runs).
import { existsSync } from "node:fs"
import module from "node:module"

// Node 22.1 and later keep V8's compiled code of dist/ between runs (in the system's temp dir, or
// $NODE_COMPILE_CACHE; NODE_DISABLE_COMPILE_CACHE=1 turns it off): a quarter of a command's start-up.
// Node 20 has no such cache; the call is skipped there.
module.enableCompileCache?.()

const main = new URL("../dist/main.js", import.meta.url)
if (!existsSync(main)) {
  process.stderr.write("kiris: the compiled program (dist/main.js) is missing; run `npm run build` first\n")
  process.exit(1)
}
await import(main.href)
