import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"

/** Context injection: `.kiris/context.md` then `AGENTS.md` of a workdir, ahead of a task's own system prompt. */

export const contextFileNames = [path.join(".kiris", "context.md"), "AGENTS.md"] as const

const maxContextBytes = 64 * 1024

const readIfFile = (file: string) => {
  try {
    if (!fs.statSync(file).isFile()) return undefined
    const text = fs.readFileSync(file, "utf8")
    return text.length > maxContextBytes ? text.slice(0, maxContextBytes) : text
  } catch {
    return undefined
  }
}

/** The system prompt for a task run in `cwd` (none when there is neither context nor `system`). */
export const systemPrompt = (cwd: string | undefined, system: string | undefined) =>
  Effect.sync(() => {
    const context = cwd === undefined ? [] : contextFileNames.map((name) => readIfFile(path.join(cwd, name)))
    const parts = [...context, system].filter((p): p is string => p !== undefined && p.trim() !== "").map((p) => p.trim())
    return parts.length === 0 ? undefined : parts.join("\n\n")
  })
