import type { RpcClient } from "@effect/rpc"
import type { RpcClientError } from "@effect/rpc/RpcClientError"
import type { WorkerRpcs } from "../domain/rpc/WorkerRpcs.js"

/** A worker's RPC client to the hub. */
export type WorkerClient = RpcClient.FromGroup<typeof WorkerRpcs, RpcClientError>
