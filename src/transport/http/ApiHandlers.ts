import { Layer } from "effect"
import { CoreApiHandlers } from "./CoreApiHandlers.js"
import { EventsSse } from "./EventsSse.js"
import { FileApiHandlers } from "./FileApiHandlers.js"
import { InboxApiHandlers } from "./InboxApiHandlers.js"
import { TaskApiHandlers } from "./TaskApiHandlers.js"

/** Every REST group's handlers, merged once; `addHttpApi` needs one for each group of `Api`. */
export const ApiHandlers = Layer.mergeAll(CoreApiHandlers, TaskApiHandlers, FileApiHandlers, EventsSse, InboxApiHandlers)
