/**
 * vitest's globalSetup for PostgreSQL: a tag for this run's test databases (`kiris_t_<tag>_…`, see
 * Pg.ts), handed to the test processes (`inject("kirisPgRun")`); when the run ends, every database
 * with the tag is dropped. Nothing happens without KIRIS_TEST_DATABASE_URL.
 */
import { createRequire } from "node:module"
import * as crypto from "node:crypto"
import type { TestProject } from "vitest/node"

declare module "vitest" {
  export interface ProvidedContext {
    kirisPgRun: string
  }
}

interface PgClient {
  connect(): Promise<void>
  query(text: string, values?: ReadonlyArray<unknown>): Promise<{ rows: ReadonlyArray<Record<string, unknown>> }>
  end(): Promise<void>
}

/** The `pg` driver (it ships no type declarations; these three calls are all this file uses). */
const { Client } = createRequire(import.meta.url)("pg") as { Client: new (config: { connectionString: string }) => PgClient }

export const setup = (project: TestProject) => {
  const tag = crypto.randomBytes(4).toString("hex")
  project.provide("kirisPgRun", tag)
  const url = process.env["KIRIS_TEST_DATABASE_URL"]
  if (url === undefined || url === "") return
  return async () => {
    const client = new Client({ connectionString: url })
    await client.connect()
    try {
      const { rows } = await client.query("SELECT datname FROM pg_database WHERE starts_with(datname, $1)", [`kiris_t_${tag}_`])
      for (const row of rows) await client.query(`DROP DATABASE IF EXISTS "${String(row["datname"])}" WITH (FORCE)`)
    } finally {
      await client.end()
    }
  }
}
