import { Context, Effect, Layer, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { ServerConfig } from "../config/ServerConfig.js"
import { randomToken } from "./Crypto.js"

/** The HS256 secret: `jwtSecret` from config, else `<data-dir>/jwt.secret`, generated on first start. */
export class JwtSecret extends Context.Tag("kiris/JwtSecret")<JwtSecret, Redacted.Redacted>() {
  static readonly layer = Layer.effect(
    JwtSecret,
    Effect.gen(function* () {
      const config = yield* ServerConfig
      if (Option.isSome(config.jwtSecret)) return config.jwtSecret.value
      const file = path.join(config.dataDir, "jwt.secret")
      return yield* Effect.sync(() => {
        fs.mkdirSync(config.dataDir, { recursive: true })
        if (!fs.existsSync(file)) fs.writeFileSync(file, randomToken(48), { mode: 0o600, flag: "wx" })
        return Redacted.make(fs.readFileSync(file, "utf8").trim())
      })
    })
  )
}
