import { createTwoFilesPatch } from "diff"

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** Binary content: a NUL byte anywhere, or bytes that are not valid UTF-8. Such files get no text diff. */
export const isBinary = (content: Uint8Array): boolean => {
  if (content.includes(0)) return true
  try {
    utf8.decode(content)
    return false
  } catch {
    return true
  }
}

/** Longest a single diff may take before it is given up (very large, very different files). */
const DIFF_TIMEOUT_MS = 2000

/**
 * A unified diff between two text contents (`null` stands for "no file": a creation or a
 * deletion). Returns undefined when the diff could not be computed within the time budget.
 */
export const unifiedDiff = (
  path: string,
  before: { readonly label: string; readonly text: string | null },
  after: { readonly label: string; readonly text: string | null }
): string | undefined => {
  if (before.text === after.text) return ""
  return createTwoFilesPatch(
    before.text === null ? "/dev/null" : `a/${path}`,
    after.text === null ? "/dev/null" : `b/${path}`,
    before.text ?? "",
    after.text ?? "",
    before.label,
    after.label,
    { context: 3, timeout: DIFF_TIMEOUT_MS }
  )
}
