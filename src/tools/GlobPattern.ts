/**
 * Glob patterns over workspace-relative paths with `/` separators: `*` and `?` stay within one
 * segment, `**` spans segments (`**\/` also matches no directory), `{a,b}` alternates and `[...]`
 * / `[!...]` are character classes. `textPattern` is the looser form used for commands: only `*`
 * is special and it matches any text.
 */

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")

const translate = (pattern: string, inBraces: boolean): [string, number] => {
  let out = ""
  let i = 0
  while (i < pattern.length) {
    const c = pattern[i]!
    if (c === "*") {
      if (pattern[i + 1] === "*") {
        const atSegmentStart = i === 0 || pattern[i - 1] === "/"
        if (atSegmentStart && pattern[i + 2] === "/") {
          out += "(?:[^/]+/)*"
          i += 3
        } else {
          out += ".*"
          i += 2
        }
      } else {
        out += "[^/]*"
        i += 1
      }
    } else if (c === "?") {
      out += "[^/]"
      i += 1
    } else if (c === "[") {
      const end = pattern.indexOf("]", i + 2)
      if (end === -1) {
        out += "\\["
        i += 1
      } else {
        let body = pattern.slice(i + 1, end)
        const negate = body.startsWith("!") || body.startsWith("^")
        if (negate) body = body.slice(1)
        out += `[${negate ? "^" : ""}${body.replace(/\\/g, "\\\\").replace(/]/g, "\\]")}]`
        i = end + 1
      }
    } else if (c === "{") {
      const alternatives: Array<string> = []
      let j = i + 1
      let closed = false
      while (j <= pattern.length) {
        const [sub, consumed] = translate(pattern.slice(j), true)
        alternatives.push(sub)
        j += consumed
        if (pattern[j] === ",") j += 1
        else if (pattern[j] === "}") {
          closed = true
          j += 1
          break
        } else break
      }
      if (closed) {
        out += `(?:${alternatives.join("|")})`
        i = j
      } else {
        out += "\\{"
        i += 1
      }
    } else if (inBraces && (c === "," || c === "}")) {
      return [out, i]
    } else if (c === "\\" && i + 1 < pattern.length) {
      out += escapeRegExp(pattern[i + 1]!)
      i += 2
    } else {
      out += escapeRegExp(c)
      i += 1
    }
  }
  return [out, i]
}

export const globToRegExp = (pattern: string): RegExp => new RegExp(`^${translate(pattern, false)[0]}$`)

export const textPatternToRegExp = (pattern: string): RegExp =>
  new RegExp(`^${pattern.split("*").map(escapeRegExp).join("[\\s\\S]*")}$`)

export const hasWildcard = (pattern: string) => /[*?[{]/.test(pattern)
