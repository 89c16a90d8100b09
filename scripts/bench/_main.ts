import { Effect, type Scope } from "effect"
import * as fs from "node:fs"

/** Megabytes, one decimal. */
export const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`

/** The process's peak resident set size so far. */
export const peakRss = () => `peak RSS ${mb(process.resourceUsage().maxRSS * 1024)}`

/** Runs a benchmark's program, removes its data directory, and exits 0, or 1 after printing the failure. */
export const runBench = <A, E>(program: Effect.Effect<A, E, Scope.Scope>, dataDir: string) =>
  Effect.runPromise(Effect.scoped(program))
    .then(() => process.exit(0))
    .catch((e) => {
      console.error(e)
      process.exit(1)
    })
    .finally(() => fs.rmSync(dataDir, { recursive: true, force: true }))
