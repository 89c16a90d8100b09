import { SqlClient } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import { FileAuthor, FileSnapshot, FileVersion } from "../domain/File.js"
import type { MessageId, SessionId } from "../domain/Ids.js"

interface VersionRow {
  readonly id: number
  readonly path: string
  readonly hash: string | null
  readonly size: number
  readonly deleted: number
  readonly author: string
  readonly author_kind: string
  readonly session_id: string | null
  readonly message_id: string | null
  readonly prev_id: number | null
  readonly disk_mtime: number | null
  readonly created_at: number
}

interface SnapshotRow {
  readonly id: number
  readonly label: string
  readonly author: string
  readonly auto: number
  readonly files: number
  readonly created_at: number
}

/** A version with what only the hub needs: the version it followed and the file's mtime when last seen equal. */
export interface VersionRecord {
  readonly version: FileVersion
  readonly prevId: number | null
  readonly diskMtime: number | null
  readonly sessionId: SessionId | null
  readonly messageId: MessageId | null
}

const AuthorJson = Schema.parseJson(FileAuthor)
const encodeAuthor = Schema.encodeSync(AuthorJson)
const decodeAuthor = Schema.decodeSync(AuthorJson)

const toRecord = (r: VersionRow): VersionRecord => ({
  version: FileVersion.make({
    id: Number(r.id),
    path: r.path,
    hash: r.hash,
    size: Number(r.size),
    author: decodeAuthor(r.author),
    createdAt: Number(r.created_at),
    deleted: Number(r.deleted) !== 0
  }),
  prevId: r.prev_id === null ? null : Number(r.prev_id),
  diskMtime: r.disk_mtime,
  sessionId: r.session_id as SessionId | null,
  messageId: r.message_id as MessageId | null
})

const toSnapshot = (r: SnapshotRow) =>
  FileSnapshot.make({
    id: Number(r.id),
    label: r.label,
    createdAt: Number(r.created_at),
    author: decodeAuthor(r.author),
    files: Number(r.files)
  })

const CHUNK = 500

const chunks = <A>(items: ReadonlyArray<A>): ReadonlyArray<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK))
  return out
}

const withSql = <A>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) => Effect.orDie(Effect.flatMap(SqlClient.SqlClient, f))

/**
 * Project-database tables of file versions, content blobs and snapshots. Runs against whichever
 * project database the caller is scoped to; SQL failures are defects (local disk).
 */
export class FilesRepo extends Effect.Service<FilesRepo>()("kiris/FilesRepo", {
  succeed: {
    latest: (path: string) =>
      withSql((sql) => sql<VersionRow>`SELECT * FROM file_versions WHERE path = ${path} ORDER BY id DESC LIMIT 1`).pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toRecord))
      ),

    /** Latest version of every recorded path (deletions included). */
    allLatest: withSql((sql) =>
      sql<VersionRow>`SELECT * FROM file_versions WHERE id IN (SELECT max(id) FROM file_versions GROUP BY path)`
    ).pipe(Effect.map((rows) => rows.map(toRecord))),

    /** Latest version id of each of these paths that has one. */
    latestIds: (paths: ReadonlyArray<string>) =>
      withSql((sql) =>
        Effect.forEach(chunks(paths), (part) =>
          sql<{ readonly path: string; readonly id: number }>`SELECT path, max(id) AS id FROM file_versions WHERE ${sql.in("path", part)} GROUP BY path`
        )
      ).pipe(Effect.map((parts) => new Map(parts.flat().map((r) => [r.path, Number(r.id)] as const)))),

    byId: (id: number) =>
      withSql((sql) => sql<VersionRow>`SELECT * FROM file_versions WHERE id = ${id}`).pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toRecord))
      ),

    insertVersion: (v: {
      readonly path: string
      readonly hash: string | null
      readonly size: number
      readonly author: FileAuthor
      readonly prevId: number | null
      readonly diskMtime: number | null
      readonly createdAt: number
    }) =>
      withSql((sql) => {
        const session = v.author.kind === "session" ? v.author : null
        return sql<VersionRow>`INSERT INTO file_versions
            (path, hash, size, deleted, author, author_kind, session_id, message_id, prev_id, disk_mtime, created_at)
          VALUES (${v.path}, ${v.hash}, ${v.size}, ${v.hash === null ? 1 : 0}, ${encodeAuthor(v.author)}, ${v.author.kind},
            ${session?.sessionId ?? null}, ${session?.messageId ?? null}, ${v.prevId}, ${v.diskMtime}, ${v.createdAt})
          RETURNING *`
      }).pipe(Effect.map((rows) => toRecord(rows[0]!))),

    setDiskMtime: (id: number, mtime: number | null) =>
      withSql((sql) => sql`UPDATE file_versions SET disk_mtime = ${mtime} WHERE id = ${id}`).pipe(Effect.asVoid),

    /** Newest first, ids below `cursor`; one more than `limit` is fetched to tell whether a next page exists. */
    history: (path: string, cursor: number | undefined, limit: number) =>
      withSql((sql) =>
        cursor === undefined
          ? sql<VersionRow>`SELECT * FROM file_versions WHERE path = ${path} ORDER BY id DESC LIMIT ${limit + 1}`
          : sql<VersionRow>`SELECT * FROM file_versions WHERE path = ${path} AND id < ${cursor} ORDER BY id DESC LIMIT ${limit + 1}`
      ).pipe(Effect.map((rows) => rows.map(toRecord))),

    /** A session's versions with id >= fromId, oldest first. */
    sessionVersions: (sessionId: SessionId, fromId: number) =>
      withSql((sql) => sql<VersionRow>`SELECT * FROM file_versions WHERE session_id = ${sessionId} AND id >= ${fromId} ORDER BY id`).pipe(
        Effect.map((rows) => rows.map(toRecord))
      ),

    /** The message's session and creation time, when it exists. */
    message: (messageId: MessageId) =>
      withSql((sql) =>
        sql<{ readonly session_id: string; readonly created_at: number }>`SELECT session_id, created_at FROM messages WHERE id = ${messageId}`
      ).pipe(Effect.map((rows) => Option.fromNullable(rows[0]))),

    /** The first version the session wrote in a message created at `since` or later; null when none. */
    firstVersionSince: (sessionId: SessionId, since: number) =>
      withSql((sql) =>
        sql<{ readonly id: number | null }>`SELECT min(v.id) AS id FROM file_versions v JOIN messages m ON m.id = v.message_id
          WHERE v.session_id = ${sessionId} AND m.created_at >= ${since}`
      ).pipe(Effect.map((rows) => (rows[0]?.id === null || rows[0]?.id === undefined ? null : Number(rows[0].id)))),

    parentOf: (sessionId: SessionId) =>
      withSql((sql) => sql<{ readonly parent_id: string | null }>`SELECT parent_id FROM sessions WHERE id = ${sessionId}`).pipe(
        Effect.map((rows) => (rows[0]?.parent_id ?? null) as SessionId | null)
      ),

    blobExists: (hash: string) =>
      withSql((sql) => sql<{ readonly hash: string }>`SELECT hash FROM file_blobs WHERE hash = ${hash}`).pipe(Effect.map((rows) => rows.length > 0)),

    insertBlob: (hash: string, size: number, at: number) =>
      withSql((sql) => sql`INSERT INTO file_blobs (hash, size, created_at) VALUES (${hash}, ${size}, ${at}) ON CONFLICT (hash) DO NOTHING`).pipe(
        Effect.asVoid
      ),

    /** Bytes of all stored contents. */
    usedBytes: withSql((sql) => sql<{ readonly n: number | null }>`SELECT sum(size) AS n FROM file_blobs`).pipe(
      Effect.map((rows) => Number(rows[0]?.n ?? 0))
    ),

    insertSnapshot: (s: { readonly label: string; readonly author: FileAuthor; readonly auto: boolean; readonly createdAt: number }) =>
      withSql((sql) =>
        Effect.gen(function* () {
          const [row] = yield* sql<SnapshotRow>`INSERT INTO file_snapshots (label, author, auto, files, created_at)
            VALUES (${s.label}, ${encodeAuthor(s.author)}, ${s.auto ? 1 : 0}, 0, ${s.createdAt}) RETURNING *`
          const id = Number(row!.id)
          yield* sql`INSERT INTO file_snapshot_entries (snapshot_id, path, version_id)
            SELECT ${id}, path, max(id) FROM file_versions GROUP BY path`
          yield* sql`UPDATE file_snapshots SET files = (
              SELECT count(*) FROM file_snapshot_entries e JOIN file_versions v ON v.id = e.version_id
              WHERE e.snapshot_id = ${id} AND v.deleted = 0)
            WHERE id = ${id}`
          const [done] = yield* sql<SnapshotRow>`SELECT * FROM file_snapshots WHERE id = ${id}`
          return toSnapshot(done!)
        })
      ),

    snapshots: withSql((sql) => sql<SnapshotRow>`SELECT * FROM file_snapshots ORDER BY id DESC`).pipe(
      Effect.map((rows) => rows.map(toSnapshot))
    ),

    snapshotById: (id: number) =>
      withSql((sql) => sql<SnapshotRow>`SELECT * FROM file_snapshots WHERE id = ${id}`).pipe(
        Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), toSnapshot))
      ),

    /** The versions a snapshot holds, one per path. */
    snapshotVersions: (id: number) =>
      withSql((sql) =>
        sql<VersionRow>`SELECT v.* FROM file_snapshot_entries e JOIN file_versions v ON v.id = e.version_id WHERE e.snapshot_id = ${id}`
      ).pipe(Effect.map((rows) => rows.map(toRecord))),

    /**
     * Versions pruning may remove: beyond the newest `keep` of their path and created before
     * `cutoff`, referenced by no snapshot. (The caller also spares what reverting latest turns needs.)
     */
    pruneCandidates: (keep: number, cutoff: number) =>
      withSql((sql) =>
        sql<{ readonly id: number }>`SELECT id FROM (
            SELECT id, created_at, ROW_NUMBER() OVER (PARTITION BY path ORDER BY id DESC) AS rn FROM file_versions
          ) ranked
          WHERE rn > 1 AND (rn > ${keep} OR created_at < ${cutoff})
            AND NOT EXISTS (SELECT 1 FROM file_snapshot_entries e WHERE e.version_id = ranked.id)`
      ).pipe(Effect.map((rows) => rows.map((r) => Number(r.id)))),

    /** The same rule as `pruneCandidates`, for one path. */
    pathPruneCandidates: (path: string, keep: number, cutoff: number) =>
      withSql((sql) =>
        sql<{ readonly id: number }>`SELECT id FROM (
            SELECT id, created_at, ROW_NUMBER() OVER (ORDER BY id DESC) AS rn FROM file_versions WHERE path = ${path}
          ) ranked
          WHERE rn > 1 AND (rn > ${keep} OR created_at < ${cutoff})
            AND NOT EXISTS (SELECT 1 FROM file_snapshot_entries e WHERE e.version_id = ranked.id)`
      ).pipe(Effect.map((rows) => rows.map((r) => Number(r.id)))),

    /** How many versions a path has. */
    versionCount: (path: string) =>
      withSql((sql) => sql<{ readonly n: number }>`SELECT count(*) AS n FROM file_versions WHERE path = ${path}`).pipe(
        Effect.map((rows) => Number(rows[0]?.n ?? 0))
      ),

    /** Ids written in each session's latest writing turn, and the versions those followed. */
    latestTurnVersions: withSql((sql) =>
      sql<{ readonly id: number; readonly prev_id: number | null }>`SELECT v.id, v.prev_id FROM file_versions v
        JOIN file_versions last ON last.session_id = v.session_id AND last.message_id = v.message_id
        WHERE last.id IN (SELECT max(id) FROM file_versions WHERE session_id IS NOT NULL GROUP BY session_id)`
    ).pipe(
      Effect.map((rows) => {
        const ids = new Set<number>()
        for (const r of rows) {
          ids.add(Number(r.id))
          if (r.prev_id !== null) ids.add(Number(r.prev_id))
        }
        return ids
      })
    ),

    deleteVersions: (ids: ReadonlyArray<number>) =>
      withSql((sql) => Effect.forEach(chunks(ids), (part) => sql`DELETE FROM file_versions WHERE ${sql.in("id", part)}`, { discard: true })),

    /** Automatic snapshots (taken before reverts) created before `cutoff`. */
    deleteAutoSnapshots: (cutoff: number) =>
      withSql((sql) =>
        Effect.gen(function* () {
          const rows = yield* sql<{ readonly id: number }>`SELECT id FROM file_snapshots WHERE auto = 1 AND created_at < ${cutoff}`
          const ids = rows.map((r) => Number(r.id))
          for (const part of chunks(ids)) {
            yield* sql`DELETE FROM file_snapshot_entries WHERE ${sql.in("snapshot_id", part)}`
            yield* sql`DELETE FROM file_snapshots WHERE ${sql.in("id", part)}`
          }
          return ids.length
        })
      ),

    /** Blobs no version refers to any more. */
    orphanBlobs: withSql((sql) =>
      sql<{ readonly hash: string }>`SELECT hash FROM file_blobs b WHERE NOT EXISTS (SELECT 1 FROM file_versions v WHERE v.hash = b.hash)`
    ).pipe(Effect.map((rows) => rows.map((r) => r.hash))),

    deleteBlobs: (hashes: ReadonlyArray<string>) =>
      withSql((sql) => Effect.forEach(chunks(hashes), (part) => sql`DELETE FROM file_blobs WHERE ${sql.in("hash", part)}`, { discard: true }))
  }
}) {}
