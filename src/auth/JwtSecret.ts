import { Context, Effect, Layer, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { ServerConfig } from "../config/ServerConfig.js"
import { randomToken } from "./Crypto.js"

/**
 * The HS256 secret: `jwtSecret` from config, else `<data-dir>/jwt.secret`, generated on first start.
 * Hubs sharing the data dir may start together: each writes its candidate to a file of its own and
 * links it into place, which only the first does (the link fails for the others, who read the
 * winner's complete file, never a half-written one).
 */
export class JwtSecret extends Context.Tag("kiris/JwtSecret")<JwtSecret, Redacted.Redacted>() {
  static readonly layer = Layer.effect(
    JwtSecret,
    Effect.gen(function* () {
      const config = yield* ServerConfig
      if (Option.isSome(config.jwtSecret)) return config.jwtSecret.value
      const file = path.join(config.dataDir, "jwt.secret")
      return yield* Effect.sync(() => {
        fs.mkdirSync(config.dataDir, { recursive: true })
        if (!fs.existsSync(file)) placeOnce(file, randomToken(48))
        return Redacted.make(fs.readFileSync(file, "utf8").trim())
      })
    })
  )
}

/** Writes `content` to `file` unless it exists, atomically: a reader sees no file or the whole of it. */
const placeOnce = (file: string, content: string) => {
  const candidate = `${file}.${process.pid}.${randomToken(6)}`
  fs.writeFileSync(candidate, content, { mode: 0o600, flag: "wx" })
  try {
    fs.linkSync(candidate, file)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
  } finally {
    fs.rmSync(candidate, { force: true })
  }
}
