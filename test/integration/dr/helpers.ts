import * as k8s from '@kubernetes/client-node'
import pg from 'pg'

import {sandboxEnv} from '../../support/sandbox.js'
import {startCli, type BackgroundCli} from '../../support/cli.js'
import {TempProject} from '../../support/project.js'

export function sandboxUrl(): string {
  return sandboxEnv().postgresUrl
}

export function dbUrl(database: string): string {
  const u = new URL(sandboxUrl())
  u.pathname = `/${database}`
  return u.toString()
}

export async function query<T extends pg.QueryResultRow = Record<string, unknown>>(
  database: string,
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({connectionString: dbUrl(database)})
  await client.connect()
  try {
    return (await client.query<T>(text, values)).rows
  } finally {
    await client.end()
  }
}

export {randomSuffix as random} from '../../support/names.js'

/** A source database with an orders table: `rows` orders, the newest `newestAgoSec` seconds old. */
export async function createSourceDb(name: string, rows: number, newestAgoSec: number): Promise<void> {
  await query('postgres', `CREATE DATABASE ${name}`)
  await query(
    name,
    `CREATE TABLE orders (id bigserial PRIMARY KEY, customer text NOT NULL, total numeric(10,2) NOT NULL, created_at timestamptz NOT NULL);
     INSERT INTO orders (customer, total, created_at)
       SELECT 'c' || g, (g % 997) + 0.99, now() - make_interval(secs => ${newestAgoSec} + ($1::int - g))
       FROM generate_series(1, $1::int) g;`.replaceAll('$1', String(rows)),
  )
}

export async function dropDb(name: string): Promise<void> {
  await query('postgres', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
}

export async function drillDatabases(): Promise<string[]> {
  return (
    await query<{datname: string}>(
      'postgres',
      "select datname from pg_database where datname like 'retailops\\_drill\\_%'",
    )
  ).map((r) => r.datname)
}

export async function sourceFingerprint(name: string): Promise<{count: string; sum: string; tables: string}> {
  const [row] = await query<{count: string; sum: string; tables: string}>(
    name,
    "select (select count(*) from orders)::text as count, (select md5(string_agg(id || ':' || total || ':' || created_at, ',' order by id)) from orders) as sum, (select string_agg(table_name, ',' order by table_name) from information_schema.tables where table_schema = 'public') as tables",
  )
  return row
}

/** A project of the dr suite (test/support/project.ts). */
export function drProject(yaml: string): TempProject {
  return new TempProject(yaml, {prefix: 't-dr'})
}

export function cli(args: string[], options: {cwd: string; env?: Record<string, string>}): BackgroundCli {
  return startCli(args, options)
}

export interface Seen {
  type: string
  kind: string
  namespace: string
  name: string
  rv: number
  object: k8s.KubernetesObject & {data?: Record<string, string>; type?: string; spec?: Record<string, unknown>}
}

/**
 * Watches, from before the drill starts, what appears in drill namespaces: the namespace itself,
 * its NetworkPolicies, every restored kind and the pods. Each first ADDED event carries the
 * object as created, with the etcd revision of its creation (resourceVersion).
 */
export async function watchDrills(
  kc: k8s.KubeConfig,
  extra: [string, string][] = [],
): Promise<{events: Seen[]; stop: () => void}> {
  const events: Seen[] = []
  const controllers: AbortController[] = []
  const watch = new k8s.Watch(kc)
  const paths: [string, string][] = [
    ['Namespace', '/api/v1/namespaces'],
    ['NetworkPolicy', '/apis/networking.k8s.io/v1/networkpolicies'],
    ['ServiceAccount', '/api/v1/serviceaccounts'],
    ['ConfigMap', '/api/v1/configmaps'],
    ['Secret', '/api/v1/secrets'],
    ['Service', '/api/v1/services'],
    ['PodDisruptionBudget', '/apis/policy/v1/poddisruptionbudgets'],
    ['Deployment', '/apis/apps/v1/deployments'],
    ['HorizontalPodAutoscaler', '/apis/autoscaling/v2/horizontalpodautoscalers'],
    ['Pod', '/api/v1/pods'],
    ...extra,
  ]
  const ready = paths.map(async ([kind, apiPath]) => {
    controllers.push(
      await watch.watch(
        apiPath,
        {allowWatchBookmarks: false},
        (type, obj: Seen['object']) => {
          const namespace = kind === 'Namespace' ? obj.metadata!.name! : (obj.metadata!.namespace ?? '')
          if (!namespace.startsWith('retailops-drill-')) return
          events.push({
            type,
            kind,
            namespace,
            name: obj.metadata!.name!,
            rv: Number(obj.metadata!.resourceVersion),
            object: obj,
          })
        },
        () => {},
      ),
    )
  })
  await Promise.all(ready)
  return {events, stop: () => controllers.forEach((c) => c.abort())}
}
