/**
 * Multi-row `VALUES` lists for the set-based statements: a batch of N rows runs as a few statements
 * of 128, 64, …, 1 rows, so a handful of statement texts serve every batch size (each is prepared
 * once and then found in the driver's statement cache), and the engine binds plain parameters
 * instead of taking a JSON document apart. Plain `VALUES` is portable SQL; a `VALUES` list used as a
 * table names its columns `column1`, `column2`, … in both SQLite and PostgreSQL.
 */

/** Rows per statement at most: 128 rows × 16 columns stays far below SQLite's and PostgreSQL's parameter limits. */
export const MAX_ROWS = 128

/** The chunk sizes that cover `n` rows: as many MAX_ROWS as fit, then the binary digits of the rest. */
export const chunkSizes = (n: number): Array<number> => {
  const out: Array<number> = []
  let left = n
  while (left >= MAX_ROWS) {
    out.push(MAX_ROWS)
    left -= MAX_ROWS
  }
  for (let size = MAX_ROWS / 2; size >= 1; size /= 2) {
    if (left >= size) {
      out.push(size)
      left -= size
    }
  }
  return out
}

const cache = new Map<string, string>()

/** `(row), (row), …` with `rows` copies of `row` (e.g. `(?, ?, ?)`), memoized. */
export const valuesList = (row: string, rows: number): string => {
  const key = `${rows}:${row}`
  let text = cache.get(key)
  if (text === undefined) {
    text = Array.from({ length: rows }, () => row).join(", ")
    cache.set(key, text)
  }
  return text
}
