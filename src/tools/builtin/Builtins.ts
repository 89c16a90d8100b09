import { Effect } from "effect"
import type { Tool } from "../Tool.js"
import { BashTool } from "./BashTool.js"
import { TaskAccess } from "../../queue/TaskAccess.js"
import { EditTool } from "./EditTool.js"
import { makeEnqueueTool } from "./EnqueueTool.js"
import { GlobTool } from "./GlobTool.js"
import { GrepTool } from "./GrepTool.js"
import { ListTool } from "./ListTool.js"
import { ReadTool } from "./ReadTool.js"
import { TaskTool } from "./TaskTool.js"
import { WriteTool } from "./WriteTool.js"

/** Every built-in tool, in the order the model sees them. */
export const builtinTools: Effect.Effect<ReadonlyArray<Tool>, never, TaskAccess> = Effect.map(TaskAccess, (tasks) => [
  ReadTool,
  WriteTool,
  EditTool,
  ListTool,
  GlobTool,
  GrepTool,
  BashTool,
  TaskTool,
  makeEnqueueTool(tasks)
])
