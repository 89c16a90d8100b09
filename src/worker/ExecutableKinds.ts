import type { TaskKind } from "../domain/Task.js"

/** The task kinds a worker can run (what `kiris worker` runs unless `--kinds` narrows it). */
export const executableKinds: ReadonlyArray<TaskKind> = ["chat", "agent", "cli", "shell", "python", "noop"]
