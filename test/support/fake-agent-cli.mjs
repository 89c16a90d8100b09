#!/usr/bin/env node
// Imitates `codex exec` and `claude -p` closely enough to check the mode they are started in.
//
//   codex:  exec --skip-git-repo-check [MODE FLAGS…] -- PROMPT
//   claude: -p [MODE FLAGS…] -- PROMPT
//
// It exits 2 (with a message on stderr) on any other argument layout. It prints
// "args: <JSON of argv>" and, like the real agents, edits files only in a mode that lets it:
// codex with `--sandbox workspace-write`, claude with `--permission-mode acceptEdits`.
// Then it writes <cwd>/.gitignore ("node_modules/") and prints "edited"; otherwise it prints
// "read-only: not editing" and changes nothing.
//
// Env switches (edit modes only):
//   FAKE_AGENT_COMMIT  first commit <cwd>/committed.txt ("committed") with git.
//   FAKE_AGENT_EXIT    exit with this code after the edits.
import { execFileSync } from "node:child_process"
import { writeFileSync } from "node:fs"
import { join } from "node:path"

const args = process.argv.slice(2)
process.stdout.write(`args: ${JSON.stringify(args)}\n`)

const refuse = (why) => {
  process.stderr.write(`fake-agent-cli: ${why}: ${JSON.stringify(args)}\n`)
  process.exit(2)
}

const separator = args.indexOf("--")
if (separator === -1 || separator !== args.length - 2) refuse("the prompt must follow --, as the last argument")
let modeFlags
if (args[0] === "exec") {
  if (args[1] !== "--skip-git-repo-check") refuse("codex exec without --skip-git-repo-check")
  modeFlags = args.slice(2, separator)
} else if (args[0] === "-p") {
  modeFlags = args.slice(1, separator)
} else {
  refuse("neither `codex exec` nor `claude -p`")
}

const pairs = modeFlags.flatMap((flag, i) => (i + 1 < modeFlags.length ? [`${flag} ${modeFlags[i + 1]}`] : []))
const canEdit = args[0] === "exec" ? pairs.includes("--sandbox workspace-write") : pairs.includes("--permission-mode acceptEdits")
if (!canEdit) {
  process.stdout.write("read-only: not editing\n")
  process.exit(0)
}

const cwd = process.cwd()
if (process.env.FAKE_AGENT_COMMIT) {
  writeFileSync(join(cwd, "committed.txt"), "committed\n")
  execFileSync("git", ["add", "committed.txt"], { cwd })
  execFileSync("git", ["commit", "-q", "-m", "fake agent commit"], { cwd })
}
writeFileSync(join(cwd, ".gitignore"), "node_modules/\n")
process.stdout.write("edited\n")

const code = Number(process.env.FAKE_AGENT_EXIT ?? 0)
if (Number.isInteger(code) && code !== 0) {
  process.stderr.write(`fake-agent-cli: exiting with code ${code}\n`)
  process.exit(code)
}
