import { Schema } from "effect"
import { TaskId } from "./Ids.js"
import { Task } from "./Task.js"

/**
 * Tasks of one project changed state (enqueued, leased, progressed, ended, cancelled, retried).
 * One event per group commit per project, carrying each task as it is after the change.
 */
export const TasksChanged = Schema.TaggedStruct("TasksChanged", { tasks: Schema.Array(Task) })

/** Parts streamed by a worker running a remote agent turn (`task.progress`). */
export const TaskProgress = Schema.TaggedStruct("TaskProgress", { taskId: TaskId, parts: Schema.Array(Schema.Unknown) })

export const TaskEvent = Schema.Union(TasksChanged, TaskProgress)
export type TaskEvent = typeof TaskEvent.Type
