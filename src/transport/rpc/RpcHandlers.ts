import { Layer } from "effect"
import { CoreHandlers } from "./CoreHandlers.js"
import { FileHandlers } from "./FileHandlers.js"
import { InboxHandlers } from "./InboxHandlers.js"
import { PermissionHandlers } from "./PermissionHandlers.js"
import { PresenceHandlers } from "./PresenceHandlers.js"
import { SessionHandlers } from "./SessionHandlers.js"
import { TaskHandlers } from "./TaskHandlers.js"
import { WorkerHandlers } from "./WorkerHandlers.js"

/** Every RPC handler, merged once; both transports serve this same layer. */
export const RpcHandlers = Layer.mergeAll(
  CoreHandlers,
  PermissionHandlers,
  SessionHandlers,
  FileHandlers,
  TaskHandlers,
  WorkerHandlers,
  PresenceHandlers,
  InboxHandlers
)
