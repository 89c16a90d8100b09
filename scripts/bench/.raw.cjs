const D = require("better-sqlite3"); const fs = require("fs")
const variant = process.argv[2] || "full"
const f = "/tmp/rawb/q-" + variant + ".db"; for (const s of ["", "-wal", "-shm"]) try { fs.unlinkSync(f + s) } catch {}
const db = new D(f); db.pragma("journal_mode = WAL"); db.pragma("synchronous = NORMAL"); db.pragma("cache_size = -65536")
db.exec(`CREATE TABLE tasks (seq INTEGER PRIMARY KEY ${variant.includes("noauto") ? "" : "AUTOINCREMENT"}, id TEXT NOT NULL UNIQUE, project_id TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,
 priority REAL NOT NULL DEFAULT 0, run_after INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL DEFAULT 3,
 idempotency_key TEXT, depends_on TEXT, dep_policy TEXT, concurrency_key TEXT, concurrency_limit INTEGER NOT NULL DEFAULT 1, status TEXT NOT NULL,
 worker_id TEXT, lease_expires_at INTEGER, lease_ms INTEGER NOT NULL DEFAULT 0, fencing_token INTEGER NOT NULL DEFAULT 0, progress TEXT, result TEXT, error TEXT,
 created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, finished_at INTEGER)`)
db.exec(`CREATE UNIQUE INDEX tasks_idempotency ON tasks(project_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_ready ON tasks(kind, priority DESC, seq) WHERE status = 'queued';
CREATE INDEX tasks_delayed ON tasks(run_after) WHERE status = 'queued' AND run_after > 0;
CREATE INDEX tasks_leased ON tasks(lease_expires_at) WHERE status = 'leased';
CREATE INDEX tasks_concurrency ON tasks(project_id, concurrency_key) WHERE status = 'leased' AND concurrency_key IS NOT NULL;`)
if (!variant.includes("noproj")) db.exec(`CREATE INDEX tasks_project ON tasks(project_id, seq)`)
if (!variant.includes("noproj") && !variant.includes("nostatus")) db.exec(`CREATE INDEX tasks_project_status ON tasks(project_id, status, seq);`)
const N = 30000
const rid = () => "tsk_" + require("crypto").randomBytes(9).toString("base64url")
const ins = db.prepare(`INSERT INTO tasks (id, project_id, kind, payload, priority, run_after, max_attempts, idempotency_key, depends_on, dep_policy, concurrency_key, concurrency_limit, status, created_at, updated_at)
 SELECT value->>'id', value->>'p', value->>'k', value->'d', value->>'pr', value->>'ra', value->>'ma', value->>'ik', value->>'do', value->>'dp', value->>'ck', value->>'cl', value->>'s', ?, ?
 FROM json_each(?) WHERE true ON CONFLICT DO NOTHING RETURNING seq, id`)
const lease = db.prepare(`UPDATE tasks SET status = 'leased', worker_id = ?, lease_expires_at = ?, lease_ms = ?, fencing_token = fencing_token + 1, attempts = attempts + 1, updated_at = ?
 WHERE seq IN (SELECT seq FROM (SELECT seq, priority FROM tasks t WHERE status = 'queued' AND kind = ? AND run_after <= ? AND (concurrency_key IS NULL OR (SELECT count(*) FROM tasks c WHERE c.status = 'leased' AND c.concurrency_key IS NOT NULL AND c.project_id = t.project_id AND c.concurrency_key = t.concurrency_key) < concurrency_limit) ORDER BY priority DESC, seq LIMIT ?)) AND status = 'queued' RETURNING ${variant.includes('retmin') ? 'seq, id, fencing_token' : '*'}`)
const comp = db.prepare(`UPDATE tasks SET status = 'done', result = j.value->'r', lease_expires_at = NULL, finished_at = ?, updated_at = ? FROM json_each(?) AS j WHERE tasks.id = j.value->>'id' AND tasks.fencing_token = j.value->>'t' AND tasks.status = 'leased' RETURNING *`)
const t = {}; const time = (k, fn) => { const s = process.hrtime.bigint(); const r = fn(); t[k] = (t[k] || 0) + Number(process.hrtime.bigint() - s) / 1e6; return r }
const now = Date.now()
for (let b = 0; b < N / 1000; b++) {
  const items = Array.from({ length: 1000 }, (_, i) => ({ id: rid(), p: "prj_bench", k: "noop", d: { i }, pr: 0, ra: 0, ma: 3, ik: null, do: null, dp: null, ck: null, cl: 1, s: "queued" }))
  time("insert", () => db.transaction(() => ins.all(now, now, JSON.stringify(items)))())
}
for (;;) {
  const rows = time("lease", () => db.transaction(() => lease.all("w1", now + 1000, 1000, now, "noop", now, 100))())
  if (rows.length === 0) break
  time("complete", () => db.transaction(() => comp.all(now, now, JSON.stringify(rows.map(r => ({ id: r.id, t: r.fencing_token, r: { ok: true } })))))())
}
console.log(variant, Object.entries(t).map(([k, v]) => `${k}=${(v * 1000 / N).toFixed(1)}us/row`).join(" "))
