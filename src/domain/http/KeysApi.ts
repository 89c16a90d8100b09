import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Schema } from "effect"
import { Access, Requires } from "../Access.js"
import { ApiKeyId } from "../Ids.js"
import { ApiKeyInfo, CreateApiKey, CreatedApiKey } from "../User.js"
import { Authentication } from "./Authentication.js"
import { Forbidden, InvalidInput, NotFound } from "./HttpErrors.js"

/** API keys: create (the secret is in this response only), list, revoke. */
export class KeysApi extends HttpApiGroup.make("keys")
  .add(
    HttpApiEndpoint.post("create", "/api/keys")
      .setPayload(CreateApiKey)
      .addSuccess(CreatedApiKey, { status: 201 })
      .addError(Forbidden)
      .addError(NotFound)
      .addError(InvalidInput)
      .annotate(Requires, Access.authenticated("write"))
  )
  .add(
    HttpApiEndpoint.get("list", "/api/keys").addSuccess(Schema.Array(ApiKeyInfo)).addError(Forbidden).annotate(Requires, Access.authenticated("read"))
  )
  .add(
    HttpApiEndpoint.post("revoke", "/api/keys/:id/revoke")
      .setPath(Schema.Struct({ id: ApiKeyId }))
      .addSuccess(ApiKeyInfo)
      .addError(NotFound)
      .addError(Forbidden)
      .annotate(Requires, Access.authenticated("write"))
  )
  // Every operation here can be refused by the authorization path (see domain/Access.ts).
  .addError(Forbidden)
  .addError(NotFound)
  .middleware(Authentication) {}
