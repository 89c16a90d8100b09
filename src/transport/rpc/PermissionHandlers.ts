import { Effect } from "effect"
import { CurrentPrincipal } from "../../domain/rpc/Middleware.js"
import { PermissionRpcs } from "../../domain/rpc/PermissionRpcs.js"
import { Permission } from "../../permission/Permission.js"
import { handlersLayer } from "./HandlersLayer.js"

/** Thin handlers for `permission.*`: each reads the caller and calls one Permission method. */
export const PermissionHandlers = handlersLayer(
  PermissionRpcs,
  Effect.gen(function* () {
    const permission = yield* Permission
    return PermissionRpcs.of({
      "permission.pending": ({ projectId, sessionId }) => Effect.flatMap(CurrentPrincipal, (c) => permission.pending(c, projectId, sessionId)),
      "permission.reply": (input) => Effect.flatMap(CurrentPrincipal, (c) => permission.reply(c, input)),
      "permission.rules": ({ projectId, sessionId }) => Effect.flatMap(CurrentPrincipal, (c) => permission.rules(c, projectId, sessionId)),
      "permission.setRule": (input) => Effect.flatMap(CurrentPrincipal, (c) => permission.setRule(c, input)),
      "permission.removeRule": ({ projectId, ruleId }) => Effect.flatMap(CurrentPrincipal, (c) => permission.removeRule(c, projectId, ruleId))
    })
  })
)
