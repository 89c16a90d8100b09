import { Effect, Option } from "effect"
import { AccessControl } from "../../auth/AccessControl.js"
import { requirementOf } from "../../domain/Access.js"
import type { Principal } from "../../domain/Auth.js"
import { Api } from "../../domain/http/Api.js"
import { CurrentPrincipal } from "../../domain/rpc/Middleware.js"
import { ProjectDb } from "../../storage/ProjectDb.js"

type Groups = typeof Api extends { readonly groups: infer G } ? G : never

/**
 * The REST twin of the RPC auth middleware. `HttpApiMiddleware` cannot see which endpoint it guards,
 * so each handler is wrapped: `access(group, endpoint)(input, (caller) => …)` checks the endpoint's
 * declared requirement against the decoded input (path, query and body fields merged, as the RPC
 * payload carries them) with AccessControl, then runs the handler as the caller, inside the project's
 * database scope when the input names one project. A missing declaration fails when the layer is built.
 */
export const makeHttpAccess = Effect.gen(function* () {
  const control = yield* AccessControl
  const dbs = yield* ProjectDb
  return <G extends keyof Groups & string>(group: G, endpoint: string) => {
    const declared = Option.flatMap(
      Option.fromNullable(
        (Api.groups as unknown as Record<string, { readonly endpoints: Record<string, { readonly annotations: never }> }>)[group]?.endpoints[endpoint]
      ),
      (e) => requirementOf(e.annotations)
    )
    if (Option.isNone(declared)) throw new Error(`REST endpoint ${group}.${endpoint} declares no access requirement`)
    const requirement = declared.value
    return <A, E, R>(input: unknown, handler: (caller: Principal) => Effect.Effect<A, E, R>) =>
      Effect.gen(function* () {
        const caller = yield* CurrentPrincipal
        const grant = yield* control.check(caller, requirement, input)
        return yield* Option.isSome(grant) ? dbs.withProject(grant.value.project.id)(handler(caller)) : handler(caller)
      })
  }
})
