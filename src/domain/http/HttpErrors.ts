import { HttpApiSchema } from "@effect/platform"
import * as DomainErrors from "../Errors.js"

/**
 * The domain errors as REST responses: the one place their HTTP statuses are assigned. Groups add
 * these (not the bare domain classes) so every endpoint answers an error with the same status and
 * the same JSON body (`{"_tag": ..., ...fields}`) the RPC transports carry.
 */
export const InvalidInput = DomainErrors.InvalidInput.annotations(HttpApiSchema.annotations({ status: 400 }))
export const Unauthorized = DomainErrors.Unauthorized.annotations(HttpApiSchema.annotations({ status: 401 }))
export const Forbidden = DomainErrors.Forbidden.annotations(HttpApiSchema.annotations({ status: 403 }))
export const NotFound = DomainErrors.NotFound.annotations(HttpApiSchema.annotations({ status: 404 }))
export const Conflict = DomainErrors.Conflict.annotations(HttpApiSchema.annotations({ status: 409 }))
export const ConfirmMismatch = DomainErrors.ConfirmMismatch.annotations(HttpApiSchema.annotations({ status: 409 }))
export const TooManyRequests = DomainErrors.TooManyRequests.annotations(HttpApiSchema.annotations({ status: 429 }))
export const WorkspaceUnreachable = DomainErrors.WorkspaceUnreachable.annotations(HttpApiSchema.annotations({ status: 503 }))
