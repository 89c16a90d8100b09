import picomatch from "picomatch"

/**
 * Glob patterns over workspace-relative paths with `/` separators, matched by picomatch: `*` and
 * `?` stay within one segment, `**` as a whole segment spans segments (`**\/` also matches no
 * directory; `**` inside a segment is a plain `*`), `{a,b}` alternates and `[...]` / `[!...]` /
 * `[^...]` are character classes. Wildcards match dotfiles (`*` matches `.env`), a leading `!` is
 * a literal character (no negation) and extglobs (`@(a|b)`) are off, so a pattern means what it
 * shows. `textPattern` is the looser form used for commands: only `*` is special and it matches
 * any text.
 */

const options: picomatch.PicomatchOptions = { dot: true, nonegate: true, noextglob: true, windows: false }

/** picomatch reads `[!...]` as a class holding `!`; the POSIX negation is `[^...]`. */
const posixNegation = (pattern: string) => pattern.replace(/(^|[^\\])\[!/g, "$1[^")

/** A predicate telling whether a `/`-separated relative path matches `pattern`. */
export const globMatcher = (pattern: string): ((path: string) => boolean) => picomatch(posixNegation(pattern), options)

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")

export const textPatternToRegExp = (pattern: string): RegExp => new RegExp(`^${pattern.split("*").map(escapeRegExp).join("[\\s\\S]*")}$`)

export const hasWildcard = (pattern: string) => /[*?[{]/.test(pattern)
