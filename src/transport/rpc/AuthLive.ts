import { RpcSchema } from "@effect/rpc"
import { Effect, Layer, Option, type Schema } from "effect"
import { AccessControl } from "../../auth/AccessControl.js"
import { ApiKeys } from "../../auth/ApiKeys.js"
import { Revocations, type Revocation } from "../../auth/Revocations.js"
import { requirementOf } from "../../domain/Access.js"
import type { Principal } from "../../domain/Auth.js"
import { Forbidden, Unauthorized } from "../../domain/Errors.js"
import { AuthMiddleware, CurrentPrincipal } from "../../domain/rpc/Middleware.js"
import { rpcSpan } from "../../runtime/Tracing.js"
import { ProjectDb } from "../../storage/ProjectDb.js"
import * as K from "../metrics/KirisMetrics.js"

const concerns = (caller: Principal) => (r: Revocation) => (r._tag === "Key" ? r.keyId === caller.keyId : r.userId === caller.userId)

/** Records a unary RPC's time in `kiris_rpc_duration_seconds{tag}` (tags are a closed set: the group's RPCs). */
const timed =
  (rpc: { readonly _tag: string; readonly successSchema: Schema.Schema.Any }) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    RpcSchema.isStreamSchema(rpc.successSchema)
      ? self
      : Effect.suspend(() => {
          const started = performance.now()
          return Effect.ensuring(
            self,
            Effect.sync(() => K.observe(K.rpcDuration, { tag: rpc._tag }, (performance.now() - started) / 1000))
          )
        })

/**
 * The RPC middleware of both transports (see `AuthMiddleware`): authenticate, check the RPC's
 * declared requirement with AccessControl, run the handler as the caller inside the project's
 * database scope, and end a stream whose caller loses access while it is open.
 */
export const AuthLive = Layer.effect(
  AuthMiddleware,
  Effect.gen(function* () {
    const keys = yield* ApiKeys
    const control = yield* AccessControl
    const dbs = yield* ProjectDb
    const revocations = yield* Revocations

    return AuthMiddleware.of(({ headers, next, payload, rpc }) =>
      Effect.gen(function* () {
        const requirement = requirementOf(rpc.annotations)
        if (Option.isNone(requirement)) return yield* new Forbidden({ reason: `${rpc._tag} declares no access requirement` })
        const caller = yield* keys.authenticate(headers["authorization"])
        const grant = yield* control.check(caller, requirement.value, payload)
        const handler = Effect.provideService(next, CurrentPrincipal, caller)
        if (Option.isSome(grant)) yield* Effect.annotateCurrentSpan("kiris.project_id", grant.value.project.id)
        const scoped = Option.isSome(grant) ? dbs.withProject(grant.value.project.id)(handler) : handler
        if (!RpcSchema.isStreamSchema(rpc.successSchema)) return yield* scoped
        return yield* Effect.scoped(
          Effect.flatMap(
            revocations.watch(concerns(caller), (r) =>
              r._tag === "Member"
                ? control.check(caller, requirement.value, payload)
                : Effect.fail(new Unauthorized({ reason: "credentials revoked" }))
            ),
            (lost) => Effect.raceFirst(scoped, lost)
          )
        )
      }).pipe(timed(rpc), rpcSpan(rpc._tag, headers))
    )
  })
)
