import { Effect } from "effect"
import { InboxRpcs } from "../../domain/rpc/InboxRpcs.js"
import { CurrentPrincipal } from "../../domain/rpc/Middleware.js"
import { Inbox } from "../../inbox/Inbox.js"
import { handlersLayer } from "./HandlersLayer.js"

/** Thin handlers for `inbox.*`: each reads the caller and calls one Inbox method. */
export const InboxHandlers = handlersLayer(
  InboxRpcs,
  Effect.gen(function* () {
    const inbox = yield* Inbox
    return InboxRpcs.of({
      "inbox.list": ({ projectId }) => Effect.flatMap(CurrentPrincipal, (c) => inbox.list(c, projectId)),
      "inbox.answer": (input) => Effect.flatMap(CurrentPrincipal, (c) => inbox.answer(c, input))
    })
  })
)
