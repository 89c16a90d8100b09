#!/usr/bin/env node
// Imitates an LLM CLI agent (`codex exec "PROMPT"`, `claude -p "PROMPT"`).
//
// The prompt is the last argv argument; if it is "-" (or there are no
// arguments) the prompt is read from stdin.
//
// Behaviour:
//   stdout: "fake-cli: <prompt>" and "cwd: <cwd>"
//   writes <cwd>/fake-cli-output.txt containing the prompt, then exits 0.
//
// Env switches:
//   FAKE_CLI_SLEEP_MS  sleep this long before finishing; while sleeping the pid
//                      is in <cwd>/fake-cli.pid (the output file is written
//                      only after the sleep, so a killed run leaves none).
//   FAKE_CLI_EXIT      exit code (default 0); non-zero also prints to stderr.
//   FAKE_CLI_SPAM      print that many extra bytes to stdout (for output caps).
import { writeFileSync } from "node:fs"
import { join } from "node:path"

const readStdin = async () => {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "")
}

const args = process.argv.slice(2)
const last = args.at(-1)
const prompt = last === undefined || last === "-" ? await readStdin() : last
const cwd = process.cwd()

process.stdout.write(`fake-cli: ${prompt}\n`)
process.stdout.write(`cwd: ${cwd}\n`)

const spam = Number(process.env.FAKE_CLI_SPAM ?? 0)
if (Number.isFinite(spam) && spam > 0) {
  const line = "x".repeat(79) + "\n"
  let left = Math.floor(spam)
  const parts = []
  while (left > 0) {
    const piece = left >= line.length ? line : line.slice(0, left)
    parts.push(piece)
    left -= piece.length
  }
  process.stdout.write(parts.join(""))
}

const sleepMs = Number(process.env.FAKE_CLI_SLEEP_MS ?? 0)
if (Number.isFinite(sleepMs) && sleepMs > 0) {
  writeFileSync(join(cwd, "fake-cli.pid"), String(process.pid))
  await new Promise((resolve) => setTimeout(resolve, sleepMs))
}

writeFileSync(join(cwd, "fake-cli-output.txt"), prompt)

const code = Number(process.env.FAKE_CLI_EXIT ?? 0)
if (Number.isInteger(code) && code !== 0) {
  process.stderr.write(`fake-cli: exiting with code ${code}\n`)
  process.exitCode = code
} else {
  process.stdout.write("fake-cli: done\n")
  process.exitCode = 0
}
