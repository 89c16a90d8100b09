import { Effect } from "effect"
import * as crypto from "node:crypto"

/** Password hashing (scrypt), token hashing and HS256 JWTs: plain functions over node:crypto. */

const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 32 } as const

export const hashPassword = (password: string): Effect.Effect<string> =>
  Effect.async<string>((resume) => {
    const salt = crypto.randomBytes(16)
    crypto.scrypt(password, salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p }, (err, key) =>
      err
        ? resume(Effect.die(err))
        : resume(Effect.succeed(`scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString("base64")}$${key.toString("base64")}`))
    )
  })

export const verifyPassword = (password: string, stored: string): Effect.Effect<boolean> => {
  const [alg, n, r, p, salt, hash] = stored.split("$")
  if (alg !== "scrypt" || !n || !r || !p || !salt || !hash) return Effect.succeed(false)
  const expected = Buffer.from(hash, "base64")
  return Effect.async<boolean>((resume) => {
    crypto.scrypt(password, Buffer.from(salt, "base64"), expected.length, { N: Number(n), r: Number(r), p: Number(p) }, (err, key) =>
      resume(Effect.succeed(!err && crypto.timingSafeEqual(key, expected)))
    )
  })
}

export const randomToken = (bytes = 32) => crypto.randomBytes(bytes).toString("base64url")
export const sha256 = (text: string) => crypto.createHash("sha256").update(text).digest("hex")
export const newId = (prefix: string) => `${prefix}_${crypto.randomBytes(9).toString("base64url")}`

export interface JwtClaims {
  readonly sub: string
  readonly name: string
  readonly adm: boolean
  readonly iat: number
  readonly exp: number
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")
const hmac = (secret: string, data: string) => crypto.createHmac("sha256", secret).update(data).digest("base64url")

export const signJwt = (secret: string, claims: JwtClaims): string => {
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`
  return `${body}.${hmac(secret, body)}`
}

/** The claims of a well-formed, correctly signed, unexpired token; otherwise the reason it is refused. */
export const verifyJwt = (secret: string, token: string, nowSeconds: number): JwtClaims | string => {
  const parts = token.split(".")
  if (parts.length !== 3) return "malformed token"
  const [header, payload, signature] = parts as [string, string, string]
  const expected = Buffer.from(hmac(secret, `${header}.${payload}`))
  const given = Buffer.from(signature)
  if (expected.length !== given.length || !crypto.timingSafeEqual(expected, given)) return "bad token signature"
  try {
    const head = JSON.parse(Buffer.from(header, "base64url").toString()) as { alg?: unknown }
    if (head.alg !== "HS256") return "unsupported token algorithm"
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as JwtClaims
    if (typeof claims.exp !== "number" || claims.exp <= nowSeconds) return "token expired"
    if (typeof claims.sub !== "string") return "malformed token"
    return claims
  } catch {
    return "malformed token"
  }
}
