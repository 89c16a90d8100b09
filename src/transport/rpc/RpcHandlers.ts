import { Layer } from "effect"
import { CoreHandlers } from "./CoreHandlers.js"

/** Every RPC handler, merged once; both transports serve this same layer. */
export const RpcHandlers = Layer.mergeAll(CoreHandlers)
