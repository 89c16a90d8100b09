/** `--name N` from the command line of a benchmark, or `fallback`. */
export const flag = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : Number(process.argv[i + 1])
}

/** `--name TEXT` from the command line of a benchmark, or undefined when absent (or given no value). */
export const textFlag = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`)
  const value = i === -1 ? undefined : process.argv[i + 1]
  return value === undefined || value.startsWith("--") ? undefined : value
}
