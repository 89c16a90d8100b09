import { Layer } from "effect"
import { layerSqlite } from "./TaskQueueSqlite.js"
import { WorkerHub } from "./WorkerHub.js"

/** The swarm queue with its worker registry; needs QueueDb (SQLite or PostgreSQL), EventBus, ServerConfig and Reactivity. */
export const QueueLive = layerSqlite.pipe(Layer.provideMerge(WorkerHub.Default))
