import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { taskDir } from "../../src/worker/Workdirs.js"
import { WorkerConfig } from "../../src/worker/WorkerConfig.js"
import { workerFence } from "../../src/worker/WorkerTools.js"
import { resolveInWorkspace } from "../../src/tools/Workspace.js"
import { tempDir } from "./support.js"

const refusal = (workspace: string, fence: ReturnType<typeof workerFence>, p: string) =>
  Effect.map(Effect.either(resolveInWorkspace({ workspace, fence }, p)), (r) => (r._tag === "Left" ? r.left.message : undefined))

describe("worker tools' fence", () => {
  it.effect("a shared workdir holding the worker's data dir cannot reach its key or other tasks' workdirs", () =>
    Effect.gen(function* () {
      const shared = tempDir("kiris-shared-")
      const config = yield* WorkerConfig.make({ dataDir: path.join(shared, ".kiris") })
      fs.mkdirSync(path.join(config.dataDir, "workdirs", "tsk_other"), { recursive: true })
      fs.writeFileSync(path.join(config.dataDir, "worker.key"), "secret")
      fs.writeFileSync(path.join(shared, "ok.txt"), "fine")
      const fence = workerFence(config, shared)
      assert.strictEqual(yield* refusal(shared, fence, "ok.txt"), undefined)
      assert.match((yield* refusal(shared, fence, ".kiris/worker.key")) ?? "", /off limits/)
      assert.match((yield* refusal(shared, fence, ".kiris/workdirs/tsk_other/x")) ?? "", /off limits/)
    })
  )

  it.effect("a per-task workdir inside the data dir is usable; its siblings and the key are not", () =>
    Effect.gen(function* () {
      const config = yield* WorkerConfig.make({ dataDir: tempDir("kiris-wdata-") })
      const own = taskDir(config, "tsk_mine")
      fs.mkdirSync(own, { recursive: true })
      fs.mkdirSync(taskDir(config, "tsk_other"), { recursive: true })
      fs.writeFileSync(path.join(config.dataDir, "worker.key"), "secret")
      const fence = workerFence(config, own)
      assert.strictEqual(yield* refusal(own, fence, "notes/a.txt"), undefined)
      assert.match((yield* refusal(own, fence, "../tsk_other/x")) ?? "", /escapes the workspace/)
      // even a symlink planted in the workdir does not lead to the key
      fs.symlinkSync(path.join(config.dataDir, "worker.key"), path.join(own, "key"))
      assert.match((yield* refusal(own, fence, "key")) ?? "", /outside the workspace/)
      // the fence itself, below any workspace check: the data dir is denied except the task's own workdir
      assert.isDefined(fence.check(path.join(fs.realpathSync(config.dataDir), "worker.key")))
      assert.isDefined(fence.check(path.join(fs.realpathSync(config.dataDir), "workdirs", "tsk_other", "x")))
      assert.isUndefined(fence.check(path.join(fs.realpathSync(own), "x")))
    })
  )
})
