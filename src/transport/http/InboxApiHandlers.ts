import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { Api } from "../../domain/http/Api.js"
import { InboxAnswer } from "../../domain/Inbox.js"
import { Inbox } from "../../inbox/Inbox.js"
import { makeHttpAccess } from "./HttpAccess.js"

/** Thin REST handlers of the inbox: the same Inbox calls as the `inbox.*` RPC handlers. */
export const InboxApiHandlers = HttpApiBuilder.group(Api, "inbox", (handlers) =>
  Effect.gen(function* () {
    const inbox = yield* Inbox
    const access = yield* makeHttpAccess
    return handlers
      .handle("list", ({ urlParams }) => access("inbox", "list")(urlParams, (c) => inbox.list(c, urlParams.projectId)))
      .handle("answer", ({ path, payload }) => {
        const input = InboxAnswer.make({ ...payload, id: path.id })
        return access("inbox", "answer")(input, (c) => inbox.answer(c, input))
      })
  })
)
