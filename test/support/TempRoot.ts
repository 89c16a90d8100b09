/**
 * vitest's globalSetup for temp directories: one directory per run under the system temp dir,
 * handed to the test processes (`inject("kirisTempRoot")`, see TempDir.ts) and removed with
 * everything in it when the run ends, so that directories no test removed do not pile up.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { TestProject } from "vitest/node"

declare module "vitest" {
  export interface ProvidedContext {
    kirisTempRoot: string
  }
}

export const setup = (project: TestProject) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "kiris-tests-"))
  project.provide("kirisTempRoot", root)
  return () => fs.rmSync(root, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 })
}
