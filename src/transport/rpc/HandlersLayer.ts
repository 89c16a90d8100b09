import type { Rpc, RpcGroup } from "@effect/rpc"
import type { SqlClient } from "@effect/sql"
import { Context, type Effect, Layer, type Scope } from "effect"
import type { CurrentPrincipal } from "../../domain/rpc/Middleware.js"
import type { CurrentProject } from "../../storage/ProjectDb.js"

/** What a running handler may read from its context: the auth middleware provides it to each request. */
type PerRequest = CurrentPrincipal | SqlClient.SqlClient | CurrentProject

/**
 * `group.toLayer(build)` for handlers that take their services when they are built and need only
 * `PerRequest` while they run. The RPC server merges a handler's context into every request's
 * context, which copies it; `toLayer` keeps the whole hub's context there, so each open request
 * (a subscription held for hours) would carry its own copy of every service. Here it is empty.
 * Handlers that need another service at run time do not type-check: take it in `build`.
 */
export const handlersLayer = <R extends Rpc.Any, H extends RpcGroup.HandlersFrom<R>, EX = never, RX = never>(
  group: RpcGroup.RpcGroup<R>,
  build: Effect.Effect<H, EX, RX>
): [RpcGroup.HandlersContext<R, H>] extends [PerRequest]
  ? Layer.Layer<Rpc.ToHandler<R>, EX, Exclude<RX, Scope.Scope>>
  : { readonly "handlers need at run time": Exclude<RpcGroup.HandlersContext<R, H>, PerRequest> } =>
  Layer.map(group.toLayer(build), (handlers) =>
    Context.unsafeMake(
      new Map(Array.from(handlers.unsafeMap, ([key, entry]) => [key, { ...(entry as Rpc.Handler<string>), context: Context.empty() }]))
    )
  ) as never
