import { Layer } from "effect"
import { CoreApiHandlers } from "./CoreApiHandlers.js"
import { FileApiHandlers } from "./FileApiHandlers.js"
import { TaskApiHandlers } from "./TaskApiHandlers.js"

/** Every REST group's handlers, merged once; `addHttpApi` needs one for each group of `Api`. */
export const ApiHandlers = Layer.mergeAll(CoreApiHandlers, TaskApiHandlers, FileApiHandlers)
