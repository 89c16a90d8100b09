import { Layer } from "effect"
import { layerSql } from "./TaskQueueSql.js"
import { WorkerHub } from "./WorkerHub.js"

/** The swarm queue with its worker registry; needs QueueDb (SQLite or PostgreSQL), EventBus, ServerConfig and Reactivity. */
export const QueueLive = layerSql.pipe(Layer.provideMerge(WorkerHub.Default))
