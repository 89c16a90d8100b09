/**
 * vitest's globalSetup: compiles src/ to dist/ before the tests run, so that the tests which spawn
 * `bin/kiris.js` run the current source. The build is safe to run from several vitest processes at
 * once (see scripts/build.mjs).
 */
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"

export const setup = () => {
  const script = fileURLToPath(new URL("./build.mjs", import.meta.url))
  try {
    execFileSync(process.execPath, [script, "--quiet"], { stdio: ["ignore", "inherit", "pipe"], encoding: "utf8" })
  } catch (error) {
    const stderr = typeof error === "object" && error !== null && "stderr" in error ? String(error.stderr) : String(error)
    throw new Error(`cannot build dist/ for the tests:\n${stderr}`)
  }
}
