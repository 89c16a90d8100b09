import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { inject, onTestFinished } from "vitest"

/** The run's directory (test/support/TempRoot.ts removes it when the run ends), else the system temp dir. */
const root = (): string => {
  try {
    return inject("kirisTempRoot") ?? os.tmpdir()
  } catch {
    return os.tmpdir()
  }
}

const make = (prefix: string) => fs.mkdtempSync(path.join(root(), prefix))
const remove = (dir: string) => fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 })

/**
 * A fresh temp directory. Made inside a test, it is removed when that test finishes; made elsewhere
 * (a shared layer, a describe body), with the run's directory when the run ends.
 */
export const tempDir = (prefix = "kiris-test-"): string => {
  const dir = make(prefix)
  try {
    onTestFinished(() => remove(dir))
  } catch {
    // not inside a running test: removed with the run's directory
  }
  return dir
}

/** A fresh temp directory removed when the surrounding scope closes (after what the scope started there). */
export const scopedTempDir = (prefix = "kiris-test-") =>
  Effect.acquireRelease(
    Effect.sync(() => make(prefix)),
    (dir) => Effect.sync(() => remove(dir))
  )
