/** `--name N` from the command line of a benchmark, or `fallback`. */
export const flag = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : Number(process.argv[i + 1])
}
