const D = require("better-sqlite3")
const times = new Map()
const wrap = (name) => {
  const orig = D.prototype.prepare
  D.prototype.prepare = function (src) {
    const st = orig.call(this, src)
    const key = src.replace(/\s+/g, " ").slice(0, 90)
    for (const m of ["all", "run"]) {
      const f = st[m].bind(st)
      st[m] = (...a) => { const t = process.hrtime.bigint(); try { return f(...a) } finally { const e = times.get(key) || [0, 0]; e[0] += Number(process.hrtime.bigint() - t) / 1e6; e[1]++; times.set(key, e) } }
    }
    return st
  }
}
wrap()
process.on("exit", () => { for (const [k, [ms, n]] of [...times].sort((a, b) => b[1][0] - a[1][0]).slice(0, 15)) console.log(ms.toFixed(0).padStart(6), "ms", String(n).padStart(6), k) })
