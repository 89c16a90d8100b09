import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { tempDir } from "./TempDir.js"

/**
 * Which npm packages a `kiris` child process loads. A module hook (`--import` through NODE_OPTIONS)
 * appends the URL of every module the process loads to a file; a part of the bundled dist/ stands
 * for the packages scripts/build.mjs recorded for it in dist/chunks.json, a file under node_modules
 * (a package left out of the bundle) for its own package.
 */

const dist = fileURLToPath(new URL("../../dist/", import.meta.url))

const hooks = `
import { appendFileSync } from "node:fs"
let file
export function initialize(data) { file = data.file }
export async function load(url, context, next) {
  appendFileSync(file, url + "\\n")
  return next(url, context)
}`

const packagesOf = (urls: ReadonlyArray<string>): ReadonlyArray<string> => {
  const chunks = JSON.parse(fs.readFileSync(path.join(dist, "chunks.json"), "utf8")) as Record<string, ReadonlyArray<string>>
  const packages = new Set<string>()
  for (const url of urls) {
    if (!url.startsWith("file:")) continue
    const file = fileURLToPath(url)
    if (file.startsWith(dist)) for (const p of chunks[path.relative(dist, file).split(path.sep).join("/")] ?? []) packages.add(p)
    const external = file.match(/\/node_modules\/((?:@[^/]+\/)?[^/]+)\//)
    if (external !== null) packages.add(external[1]!)
  }
  return [...packages].sort()
}

export interface PackageRecorder {
  /** NODE_OPTIONS for the processes to record (they all append to one log). */
  readonly nodeOptions: string
  /** The packages the recorded processes loaded so far. */
  readonly packages: () => ReadonlyArray<string>
  /** How many module URLs were recorded (0 means the hook never ran). */
  readonly modules: () => number
}

/** A recorder in a fresh temp directory. */
export const packageRecorder = (): PackageRecorder => {
  const dir = tempDir("kiris-modules-")
  const log = path.join(dir, "modules.log")
  fs.writeFileSync(log, "")
  const register = path.join(dir, "register.mjs")
  fs.writeFileSync(
    register,
    `import { register } from "node:module"
register(${JSON.stringify("data:text/javascript," + encodeURIComponent(hooks))}, { data: { file: ${JSON.stringify(log)} } })
`
  )
  const urls = () =>
    fs
      .readFileSync(log, "utf8")
      .split("\n")
      .filter((l) => l !== "")
  return {
    nodeOptions: `--import ${pathToFileURL(register).href}`,
    packages: () => packagesOf(urls()),
    modules: () => urls().length
  }
}
