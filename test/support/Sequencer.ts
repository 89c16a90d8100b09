import * as fs from "node:fs"
import * as path from "node:path"
import { BaseSequencer, type TestSpecification } from "vitest/node"

/**
 * Runs the longest test files first, so that the last minutes of a run keep every fork busy instead
 * of waiting on one long file started late. A file's length is its duration in this checkout's last
 * run (vitest's results cache), else the one recorded in `test/durations.json` (a clean clone has no
 * cache; refresh it with `npm run test:durations` after a full run), else the median of the known
 * ones. Files that failed last time still go first.
 */
export class LongestFirst extends BaseSequencer {
  override async sort(files: Array<TestSpecification>): Promise<Array<TestSpecification>> {
    const root = this.ctx.config.root
    const recorded = readDurations(path.join(root, "test", "durations.json"))
    const known: Array<number> = []
    const entries = files.map((spec) => {
      const file = path.relative(root, spec.moduleId).split(path.sep).join("/")
      const cached = this.ctx.cache.getFileTestResults(`${spec.project.name}:${file}`)
      const seconds = cached !== undefined ? cached.duration / 1000 : recorded[file]
      if (seconds !== undefined) known.push(seconds)
      return { spec, failed: cached?.failed === true, seconds }
    })
    known.sort((a, b) => a - b)
    const median = known[Math.floor(known.length / 2)] ?? 0
    return entries.sort((a, b) => Number(b.failed) - Number(a.failed) || (b.seconds ?? median) - (a.seconds ?? median)).map((e) => e.spec)
  }
}

/** `test/durations.json`: seconds per test file (relative to the root), or nothing when it is missing. */
const readDurations = (file: string): Readonly<Record<string, number>> => {
  try {
    const parsed: unknown = JSON.parse(fs.readFileSync(file, "utf8"))
    if (typeof parsed !== "object" || parsed === null) return {}
    return Object.fromEntries(Object.entries(parsed).filter((e): e is [string, number] => typeof e[1] === "number"))
  } catch {
    return {}
  }
}
