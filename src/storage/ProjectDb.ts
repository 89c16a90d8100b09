import { SqlClient } from "@effect/sql"
import { Context, Duration, Effect, Option, RcMap, Scope } from "effect"
import * as path from "node:path"
import { ServerConfig } from "../config/ServerConfig.js"
import type { ProjectId } from "../domain/Ids.js"
import { projectMigrations } from "./migrations/project.js"
import * as Reactivity from "@effect/experimental/Reactivity"
import { Cluster } from "../cluster/Cluster.js"
import { dropProjectSchema, openProjectPg } from "./Pg.js"
import { outsideTransaction, RootDb } from "./RootDb.js"
import { openSqlite } from "./Sqlite.js"

/** The project whose database the current fiber is scoped to. */
export class CurrentProject extends Context.Tag("kiris/CurrentProject")<CurrentProject, ProjectId>() {}

export const projectDir = (dataDir: string, id: ProjectId) => path.join(dataDir, "projects", id)

/**
 * One SQLite file per project (`<data-dir>/projects/<id>/project.db`), or on PostgreSQL one schema
 * per project (`project_<id>`, its client's only search path: the same migrations and statements run
 * in it), opened on first use and closed after `projectIdleSeconds` unused. `withProject` provides the project's `SqlClient` and
 * `CurrentProject` to an effect; it does not check membership (ProjectAccess does).
 */
export class ProjectDb extends Effect.Service<ProjectDb>()("kiris/ProjectDb", {
  scoped: Effect.gen(function* () {
    const config = yield* ServerConfig
    const cluster = yield* Cluster
    const root = yield* RootDb
    const reactivity = yield* Reactivity.Reactivity
    const open = Option.match(cluster.databaseUrl, {
      onNone: () => (id: ProjectId) =>
        Effect.map(
          openSqlite(path.join(projectDir(config.dataDir, id), "project.db"), projectMigrations),
          (client): SqlClient.SqlClient => client
        ).pipe(Effect.provideService(Reactivity.Reactivity, reactivity)),
      onSome: (url) => (id: ProjectId) =>
        Effect.map(openProjectPg(url, root, id, projectMigrations), (client): SqlClient.SqlClient => client).pipe(
          Effect.provideService(Reactivity.Reactivity, reactivity)
        )
    })
    const clients = yield* RcMap.make({ lookup: (id: ProjectId) => open(id), idleTimeToLive: Duration.seconds(config.projectIdleSeconds) })

    const withProject =
      (id: ProjectId) =>
      <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<Exclude<R, SqlClient.SqlClient>, CurrentProject>> =>
        Effect.flatMap(Effect.serviceOption(CurrentProject), (current) =>
          Option.isSome(current) && current.value === id
            ? (effect as Effect.Effect<A, E, Exclude<Exclude<R, SqlClient.SqlClient>, CurrentProject>>)
            : Effect.acquireUseRelease(
                Scope.make(),
                (scope) =>
                  Effect.flatMap(Scope.extend(RcMap.get(clients, id), scope), (client) =>
                    outsideTransaction(effect.pipe(Effect.provideService(SqlClient.SqlClient, client), Effect.provideService(CurrentProject, id)))
                  ),
                (scope, exit) => Scope.close(scope, exit)
              )
        )

    /** Opens (and migrates) the project's database now, e.g. right after the project is created. */
    const touch = (id: ProjectId) => withProject(id)(Effect.void)

    /**
     * Forgets the project's open database (a deleted project): it closes now, or as soon as the
     * scopes using it end; a later `withProject` would open the file anew.
     */
    const close = (id: ProjectId) => RcMap.invalidate(clients, id)

    /**
     * Forgets the project's database and deletes its data where the database holds it: on
     * PostgreSQL its schema is dropped (SQLite files go with the project's directory).
     */
    const drop = (id: ProjectId) =>
      Effect.zipRight(close(id), cluster.backend === "pg" ? dropProjectSchema(root, id).pipe(Effect.orDie) : Effect.void)

    return { withProject, touch, close, drop } as const
  })
}) {}
