import { Layer } from "effect"
import { QueueDb } from "../storage/QueueDb.js"
import { layerSqlite } from "./TaskQueueSqlite.js"
import { WorkerHub } from "./WorkerHub.js"

/** The swarm queue on SQLite with its worker registry; needs EventBus, ServerConfig and Reactivity. */
export const QueueLive = layerSqlite.pipe(Layer.provideMerge(WorkerHub.Default), Layer.provide(QueueDb.layer))
