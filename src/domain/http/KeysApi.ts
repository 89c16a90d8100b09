import { HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { Schema } from "effect"
import { ApiKeyId } from "../Ids.js"
import { ApiKeyInfo, CreateApiKey, CreatedApiKey } from "../User.js"
import { Authentication } from "./Authentication.js"
import { Forbidden, NotFound } from "./HttpErrors.js"

/** API keys: create (the secret is in this response only), list, revoke. */
export class KeysApi extends HttpApiGroup.make("keys")
  .add(
    HttpApiEndpoint.post("create", "/api/keys")
      .setPayload(CreateApiKey)
      .addSuccess(CreatedApiKey, { status: 201 })
      .addError(Forbidden)
      .addError(NotFound)
  )
  .add(HttpApiEndpoint.get("list", "/api/keys").addSuccess(Schema.Array(ApiKeyInfo)))
  .add(
    HttpApiEndpoint.post("revoke", "/api/keys/:id/revoke")
      .setPath(Schema.Struct({ id: ApiKeyId }))
      .addSuccess(ApiKeyInfo)
      .addError(NotFound)
      .addError(Forbidden)
  )
  .middleware(Authentication) {}
