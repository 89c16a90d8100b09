/** Plain-text output helpers for the CLI: aligned tables, key/value blocks, timestamps. */

export interface Column<A> {
  readonly header: string
  readonly value: (row: A) => string
}

const displayWidth = (s: string) => [...s].length

const padEnd = (s: string, width: number) => s + " ".repeat(Math.max(0, width - displayWidth(s)))

/** Renders rows as columns separated by two spaces, with an upper-case header line; no trailing spaces. */
export const formatTable = <A>(rows: ReadonlyArray<A>, columns: ReadonlyArray<Column<A>>): string => {
  const cells = [columns.map((c) => c.header.toUpperCase()), ...rows.map((row) => columns.map((c) => oneLine(c.value(row))))]
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => displayWidth(line[i] ?? ""))))
  return cells
    .map((line) =>
      line
        .map((cell, i) => (i === line.length - 1 ? cell : padEnd(cell, widths[i] ?? 0)))
        .join("  ")
        .trimEnd()
    )
    .join("\n")
}

/** Renders `key: value` lines with the values aligned. */
export const formatFields = (fields: ReadonlyArray<readonly [string, string]>): string => {
  const width = Math.max(0, ...fields.map(([k]) => displayWidth(k) + 1))
  return fields.map(([k, v]) => `${padEnd(k + ":", width)} ${oneLine(v)}`.trimEnd()).join("\n")
}

const oneLine = (s: string) => s.replace(/[\r\n\t]+/g, " ")

/** `2024-05-01 12:34` in UTC, or `-` for none. */
export const formatTime = (ms: number | null | undefined): string =>
  ms === null || ms === undefined ? "-" : new Date(ms).toISOString().slice(0, 16).replace("T", " ")

export const formatJson = (value: unknown): string => JSON.stringify(value, null, 2)
