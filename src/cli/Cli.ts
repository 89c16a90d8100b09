import { Command } from "@effect/cli"
import { serve } from "./Serve.js"
import { chatCommand } from "./Chat.js"
import { filesCommand, revertCommand } from "./FileCommands.js"
import { inboxCommand } from "./InboxCommands.js"
import { memberCommand, projectCommand } from "./ProjectCommands.js"
import { sessionCommand } from "./SessionCommands.js"
import { keyCommand, userCommand, whoamiCommand } from "./UserCommands.js"
import { mapCommand } from "./MapCommand.js"
import { mcpCommand } from "./Mcp.js"
import { migrateCommand } from "./Migrate.js"
import { taskCommands } from "./TaskCommands.js"
import { topCommand } from "./Top.js"
import { upCommand } from "./Up.js"
import { workerCommand } from "./Worker.js"
import { workersCommand } from "./WorkersCommand.js"

const kiris = Command.make("kiris").pipe(
  Command.withDescription("Kiris: a headless agent server and swarm hub"),
  Command.withSubcommands([
    serve,
    migrateCommand,
    projectCommand,
    memberCommand,
    sessionCommand,
    userCommand,
    keyCommand,
    whoamiCommand,
    chatCommand,
    filesCommand,
    revertCommand,
    upCommand,
    workerCommand,
    ...taskCommands,
    inboxCommand,
    workersCommand,
    topCommand,
    mapCommand,
    mcpCommand
  ])
)

export const cli = Command.run(kiris, { name: "kiris", version: "0.1.0" })
