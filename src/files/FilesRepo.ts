import { SqlClient, SqlSchema } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import type { Cause, ParseResult } from "effect"
import { Effect, Option, Schema } from "effect"
import { FileAuthor, FileSnapshot, FileVersion } from "../domain/File.js"
import { MessageId, SessionId } from "../domain/Ids.js"
import { CountRow, decodedOrDie, Flag, IdRow, Int, NullableInt, withSql } from "../storage/Rows.js"

const VersionRow = Schema.Struct({
  id: Int,
  path: Schema.String,
  hash: Schema.NullOr(Schema.String),
  size: Int,
  deleted: Flag,
  author: Schema.parseJson(FileAuthor),
  session_id: Schema.NullOr(SessionId),
  message_id: Schema.NullOr(MessageId),
  prev_id: NullableInt,
  disk_mtime: NullableInt,
  created_at: Int
})

const SnapshotRow = Schema.Struct({
  id: Int,
  label: Schema.String,
  author: Schema.parseJson(FileAuthor),
  files: Int,
  created_at: Int
})

/** A version with what only the hub needs: the version it followed and the file's mtime when last seen equal. */
export interface VersionRecord {
  readonly version: FileVersion
  readonly prevId: number | null
  readonly diskMtime: number | null
  readonly sessionId: SessionId | null
  readonly messageId: MessageId | null
}

const encodeAuthor = Schema.encodeSync(Schema.parseJson(FileAuthor))

const toRecord = (r: typeof VersionRow.Type): VersionRecord => ({
  version: FileVersion.make({
    id: r.id,
    path: r.path,
    hash: r.hash,
    size: r.size,
    author: r.author,
    createdAt: r.created_at,
    deleted: r.deleted
  }),
  prevId: r.prev_id,
  diskMtime: r.disk_mtime,
  sessionId: r.session_id,
  messageId: r.message_id
})

const toSnapshot = (r: typeof SnapshotRow.Type) =>
  FileSnapshot.make({ id: r.id, label: r.label, createdAt: r.created_at, author: r.author, files: r.files })

const CHUNK = 500

const chunks = <A>(items: ReadonlyArray<A>): ReadonlyArray<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK))
  return out
}

/** A statement read no rows from: SQL failures are defects (local disk). */
const exec = <A, E>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) => Effect.orDie(withSql(f))

/** A statement on the caller's project database, given its request. */
type Execute<II> = (sql: SqlClient.SqlClient, req: II) => Effect.Effect<ReadonlyArray<unknown>, SqlError>
const onProject =
  <II>(execute: Execute<II>) =>
  (req: II) =>
    withSql((sql) => execute(sql, req))

/** A query whose rows are decoded (a mismatch is a defect naming `query`), then shaped by `map`. */
const decoded =
  <I, A, B, R>(
    query: string,
    run: (req: I) => Effect.Effect<A, SqlError | ParseResult.ParseError | Cause.NoSuchElementException, R>,
    map: (a: A) => B
  ) =>
  (req: I) =>
    run(req).pipe(decodedOrDie(query), Effect.map(map))

const versions = <I, II>(query: string, Request: Schema.Schema<I, II>, execute: Execute<II>) =>
  decoded(query, SqlSchema.findAll({ Request, Result: VersionRow, execute: onProject(execute) }), (rows) => rows.map(toRecord))
const version = <I, II>(query: string, Request: Schema.Schema<I, II>, execute: Execute<II>) =>
  decoded(query, SqlSchema.findOne({ Request, Result: VersionRow, execute: onProject(execute) }), Option.map(toRecord))
const ids = <I, II>(query: string, Request: Schema.Schema<I, II>, execute: Execute<II>) =>
  decoded(query, SqlSchema.findAll({ Request, Result: IdRow, execute: onProject(execute) }), (rows) => rows.map((r) => r.id))
const count = <I, II>(query: string, Request: Schema.Schema<I, II>, execute: Execute<II>) =>
  decoded(query, SqlSchema.single({ Request, Result: CountRow, execute: onProject(execute) }), (r) => r.n)

const PathIdRow = Schema.Struct({ path: Schema.String, id: Int })
const MessageRow = Schema.Struct({ session_id: SessionId, created_at: Int })
const MinIdRow = Schema.Struct({ id: NullableInt })
const ParentRow = Schema.Struct({ parent_id: Schema.NullOr(SessionId) })
const HashRow = Schema.Struct({ hash: Schema.String })
const TurnVersionRow = Schema.Struct({ id: Int, prev_id: NullableInt })
const NewVersion = Schema.Struct({
  path: Schema.String,
  hash: Schema.NullOr(Schema.String),
  size: Schema.Number,
  author: FileAuthor,
  prevId: Schema.NullOr(Schema.Number),
  diskMtime: Schema.NullOr(Schema.Number),
  createdAt: Schema.Number
})
const History = Schema.Struct({ path: Schema.String, cursor: Schema.UndefinedOr(Schema.Number), limit: Schema.Number })
const SessionFrom = Schema.Struct({ sessionId: SessionId, from: Schema.Number })
const Prune = Schema.Struct({ path: Schema.optional(Schema.String), keep: Schema.Number, cutoff: Schema.Number })

const byPath = version(
  "latest file_versions of a path",
  Schema.String,
  (sql, path) => sql`SELECT * FROM file_versions WHERE path = ${path} ORDER BY id DESC LIMIT 1`
)
const allLatest = versions(
  "latest file_versions of every path",
  Schema.Void,
  (sql) => sql`SELECT * FROM file_versions WHERE id IN (SELECT max(id) FROM file_versions GROUP BY path)`
)
const latestIdsOf = SqlSchema.findAll({
  Request: Schema.Array(Schema.String),
  Result: PathIdRow,
  execute: (paths) =>
    withSql((sql) =>
      Effect.map(
        Effect.forEach(chunks(paths), (part) => sql`SELECT path, max(id) AS id FROM file_versions WHERE ${sql.in("path", part)} GROUP BY path`),
        (parts) => parts.flat()
      )
    )
})
const byId = version("file_versions by id", Schema.Number, (sql, id) => sql`SELECT * FROM file_versions WHERE id = ${id}`)
const insertVersion = SqlSchema.single({
  Request: NewVersion,
  Result: VersionRow,
  execute: (v) =>
    withSql((sql) => {
      const session = v.author.kind === "session" ? v.author : null
      return sql`INSERT INTO file_versions
            (path, hash, size, deleted, author, author_kind, session_id, message_id, prev_id, disk_mtime, created_at)
          VALUES (${v.path}, ${v.hash}, ${v.size}, ${v.hash === null ? 1 : 0}, ${JSON.stringify(v.author)}, ${v.author.kind},
            ${session?.sessionId ?? null}, ${session?.messageId ?? null}, ${v.prevId}, ${v.diskMtime}, ${v.createdAt})
          RETURNING *`
    })
})
const history = versions("file_versions history of a path", History, (sql, h) =>
  h.cursor === undefined
    ? sql`SELECT * FROM file_versions WHERE path = ${h.path} ORDER BY id DESC LIMIT ${h.limit + 1}`
    : sql`SELECT * FROM file_versions WHERE path = ${h.path} AND id < ${h.cursor} ORDER BY id DESC LIMIT ${h.limit + 1}`
)
const sessionVersions = versions(
  "file_versions of a session",
  SessionFrom,
  (sql, r) => sql`SELECT * FROM file_versions WHERE session_id = ${r.sessionId} AND id >= ${r.from} ORDER BY id`
)
const message = SqlSchema.findOne({
  Request: Schema.String,
  Result: MessageRow,
  execute: (id) => withSql((sql) => sql`SELECT session_id, created_at FROM messages WHERE id = ${id}`)
})
const firstVersionSince = SqlSchema.single({
  Request: Schema.Struct({ sessionId: SessionId, since: Schema.Number }),
  Result: MinIdRow,
  execute: (r) =>
    withSql(
      (sql) => sql`SELECT min(v.id) AS id FROM file_versions v JOIN messages m ON m.id = v.message_id
          WHERE v.session_id = ${r.sessionId} AND m.created_at >= ${r.since}`
    )
})
const parentOf = SqlSchema.findOne({
  Request: SessionId,
  Result: ParentRow,
  execute: (id) => withSql((sql) => sql`SELECT parent_id FROM sessions WHERE id = ${id}`)
})
const blobExists = SqlSchema.findOne({
  Request: Schema.String,
  Result: HashRow,
  execute: (hash) => withSql((sql) => sql`SELECT hash FROM file_blobs WHERE hash = ${hash}`)
})
const usedBytes = count("file_blobs total size", Schema.Void, (sql) => sql`SELECT sum(size) AS n FROM file_blobs`)
const snapshotById = SqlSchema.findOne({
  Request: Schema.Number,
  Result: SnapshotRow,
  execute: (id) => withSql((sql) => sql`SELECT * FROM file_snapshots WHERE id = ${id}`)
})
const snapshots = SqlSchema.findAll({
  Request: Schema.Void,
  Result: SnapshotRow,
  execute: () => withSql((sql) => sql`SELECT * FROM file_snapshots ORDER BY id DESC`)
})
const snapshotVersions = versions(
  "file_versions of a snapshot",
  Schema.Number,
  (sql, id) => sql`SELECT v.* FROM file_snapshot_entries e JOIN file_versions v ON v.id = e.version_id WHERE e.snapshot_id = ${id}`
)
const pruneCandidates = ids("file_versions prune candidates", Prune, (sql, p) =>
  p.path === undefined
    ? sql`SELECT id FROM (
            SELECT id, created_at, ROW_NUMBER() OVER (PARTITION BY path ORDER BY id DESC) AS rn FROM file_versions
          ) ranked
          WHERE rn > 1 AND (rn > ${p.keep} OR created_at < ${p.cutoff})
            AND NOT EXISTS (SELECT 1 FROM file_snapshot_entries e WHERE e.version_id = ranked.id)`
    : sql`SELECT id FROM (
            SELECT id, created_at, ROW_NUMBER() OVER (ORDER BY id DESC) AS rn FROM file_versions WHERE path = ${p.path}
          ) ranked
          WHERE rn > 1 AND (rn > ${p.keep} OR created_at < ${p.cutoff})
            AND NOT EXISTS (SELECT 1 FROM file_snapshot_entries e WHERE e.version_id = ranked.id)`
)
const versionCount = count(
  "file_versions count of a path",
  Schema.String,
  (sql, path) => sql`SELECT count(*) AS n FROM file_versions WHERE path = ${path}`
)
const latestTurnVersions = SqlSchema.findAll({
  Request: Schema.Void,
  Result: TurnVersionRow,
  execute: () =>
    withSql(
      (sql) => sql`SELECT v.id, v.prev_id FROM file_versions v
        JOIN file_versions last ON last.session_id = v.session_id AND last.message_id = v.message_id
        WHERE last.id IN (SELECT max(id) FROM file_versions WHERE session_id IS NOT NULL GROUP BY session_id)`
    )
})
const autoSnapshotsBefore = ids(
  "automatic file_snapshots before a time",
  Schema.Number,
  (sql, cutoff) => sql`SELECT id FROM file_snapshots WHERE auto = 1 AND created_at < ${cutoff}`
)
const orphanBlobs = SqlSchema.findAll({
  Request: Schema.Void,
  Result: HashRow,
  execute: () => withSql((sql) => sql`SELECT hash FROM file_blobs b WHERE NOT EXISTS (SELECT 1 FROM file_versions v WHERE v.hash = b.hash)`)
})

/**
 * Project-database tables of file versions, content blobs and snapshots. Runs against whichever
 * project database the caller is scoped to; SQL failures are defects (local disk), and so is a row
 * that does not decode (a `StorageError` naming the query).
 */
export class FilesRepo extends Effect.Service<FilesRepo>()("kiris/FilesRepo", {
  succeed: {
    latest: (path: string) => byPath(path),

    /** Latest version of every recorded path (deletions included). */
    allLatest: allLatest(undefined),

    /** Latest version id of each of these paths that has one. */
    latestIds: (paths: ReadonlyArray<string>) =>
      latestIdsOf(paths).pipe(
        decodedOrDie("latest file_versions ids of paths"),
        Effect.map((rows) => new Map(rows.map((r) => [r.path, r.id] as const)))
      ),

    byId: (id: number) => byId(id),

    insertVersion: (v: typeof NewVersion.Type) => insertVersion(v).pipe(decodedOrDie("inserted file_versions row"), Effect.map(toRecord)),

    setDiskMtime: (id: number, mtime: number | null) =>
      exec((sql) => sql`UPDATE file_versions SET disk_mtime = ${mtime} WHERE id = ${id}`).pipe(Effect.asVoid),

    /** Newest first, ids below `cursor`; one more than `limit` is fetched to tell whether a next page exists. */
    history: (path: string, cursor: number | undefined, limit: number) => history({ path, cursor, limit }),

    /** A session's versions with id >= fromId, oldest first. */
    sessionVersions: (sessionId: SessionId, fromId: number) => sessionVersions({ sessionId, from: fromId }),

    /** The message's session and creation time, when it exists. */
    message: (messageId: MessageId) => message(messageId).pipe(decodedOrDie("messages by id")),

    /** The first version the session wrote in a message created at `since` or later; null when none. */
    firstVersionSince: (sessionId: SessionId, since: number) =>
      firstVersionSince({ sessionId, since }).pipe(
        decodedOrDie("first file_versions of a session since a time"),
        Effect.map((r) => r.id)
      ),

    parentOf: (sessionId: SessionId) =>
      parentOf(sessionId).pipe(
        decodedOrDie("sessions parent"),
        Effect.map((r) => (Option.isSome(r) ? r.value.parent_id : null))
      ),

    blobExists: (hash: string) => blobExists(hash).pipe(decodedOrDie("file_blobs by hash"), Effect.map(Option.isSome)),

    insertBlob: (hash: string, size: number, at: number) =>
      exec((sql) => sql`INSERT INTO file_blobs (hash, size, created_at) VALUES (${hash}, ${size}, ${at}) ON CONFLICT (hash) DO NOTHING`).pipe(
        Effect.asVoid
      ),

    /** Bytes of all stored contents. */
    usedBytes: usedBytes(undefined),

    insertSnapshot: (s: { readonly label: string; readonly author: FileAuthor; readonly auto: boolean; readonly createdAt: number }) =>
      Effect.gen(function* () {
        const [inserted] = yield* ids(
          "inserted file_snapshots id",
          Schema.Void,
          (sql) =>
            sql`INSERT INTO file_snapshots (label, author, auto, files, created_at)
            VALUES (${s.label}, ${encodeAuthor(s.author)}, ${s.auto ? 1 : 0}, 0, ${s.createdAt}) RETURNING id`
        )(undefined)
        const id = inserted!
        yield* exec((sql) =>
          Effect.zipRight(
            sql`INSERT INTO file_snapshot_entries (snapshot_id, path, version_id)
            SELECT ${id}, path, max(id) FROM file_versions GROUP BY path`,
            sql`UPDATE file_snapshots SET files = (
              SELECT count(*) FROM file_snapshot_entries e JOIN file_versions v ON v.id = e.version_id
              WHERE e.snapshot_id = ${id} AND v.deleted = 0)
            WHERE id = ${id}`
          )
        )
        const done = yield* snapshotById(id).pipe(decodedOrDie("file_snapshots by id"))
        return yield* Option.match(done, {
          onNone: () => Effect.dieMessage(`file snapshot ${id} vanished while being taken`),
          onSome: (r) => Effect.succeed(toSnapshot(r))
        })
      }),

    snapshots: snapshots(undefined).pipe(
      decodedOrDie("file_snapshots"),
      Effect.map((rows) => rows.map(toSnapshot))
    ),

    snapshotById: (id: number) => snapshotById(id).pipe(decodedOrDie("file_snapshots by id"), Effect.map(Option.map(toSnapshot))),

    /** The versions a snapshot holds, one per path. */
    snapshotVersions: (id: number) => snapshotVersions(id),

    /**
     * Versions pruning may remove: beyond the newest `keep` of their path and created before
     * `cutoff`, referenced by no snapshot. (The caller also spares what reverting latest turns needs.)
     */
    pruneCandidates: (keep: number, cutoff: number) => pruneCandidates({ keep, cutoff }),

    /** The same rule as `pruneCandidates`, for one path. */
    pathPruneCandidates: (path: string, keep: number, cutoff: number) => pruneCandidates({ path, keep, cutoff }),

    /** How many versions a path has. */
    versionCount: (path: string) => versionCount(path),

    /** Ids written in each session's latest writing turn, and the versions those followed. */
    latestTurnVersions: latestTurnVersions(undefined).pipe(
      decodedOrDie("file_versions of latest turns"),
      Effect.map((rows) => {
        const ids = new Set<number>()
        for (const r of rows) {
          ids.add(r.id)
          if (r.prev_id !== null) ids.add(r.prev_id)
        }
        return ids
      })
    ),

    deleteVersions: (ids: ReadonlyArray<number>) =>
      exec((sql) => Effect.forEach(chunks(ids), (part) => sql`DELETE FROM file_versions WHERE ${sql.in("id", part)}`, { discard: true })),

    /** Automatic snapshots (taken before reverts) created before `cutoff`. */
    deleteAutoSnapshots: (cutoff: number) =>
      Effect.gen(function* () {
        const found = yield* autoSnapshotsBefore(cutoff)
        for (const part of chunks(found)) {
          yield* exec((sql) =>
            Effect.zipRight(
              sql`DELETE FROM file_snapshot_entries WHERE ${sql.in("snapshot_id", part)}`,
              sql`DELETE FROM file_snapshots WHERE ${sql.in("id", part)}`
            )
          )
        }
        return found.length
      }),

    /** Blobs no version refers to any more. */
    orphanBlobs: orphanBlobs(undefined).pipe(
      decodedOrDie("orphan file_blobs"),
      Effect.map((rows) => rows.map((r) => r.hash))
    ),

    deleteBlobs: (hashes: ReadonlyArray<string>) =>
      exec((sql) => Effect.forEach(chunks(hashes), (part) => sql`DELETE FROM file_blobs WHERE ${sql.in("hash", part)}`, { discard: true }))
  }
}) {}
