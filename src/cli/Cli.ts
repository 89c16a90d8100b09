import { Command } from "@effect/cli"
import { serve } from "./Serve.js"

const kiris = Command.make("kiris").pipe(
  Command.withDescription("Kiris: a headless agent server and swarm hub"),
  Command.withSubcommands([serve])
)

export const cli = Command.run(kiris, { name: "kiris", version: "0.1.0" })
