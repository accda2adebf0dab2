import type {LoadedConfig} from '../config/load.js'
import type {ResolvedEnvironment} from '../config/resolve.js'
import {DRILL_DB_PREFIX, DRILL_LABEL} from './naming.js'
import {pgConnect, pgTarget, serverOf} from './pg.js'

export interface Leftover {
  kind: 'scratch database' | 'namespace'
  name: string
  where: string
  /** The drill that made it, when its name or label says. */
  drillId?: string
  /** How to remove it by hand. */
  command: string
}

/**
 * Targets of earlier drills that are still there: a drill killed outright (a second Ctrl-C, an
 * OOM kill, a lost CI runner) cannot clean up. They are reported, never removed, because another
 * drill may be running right now.
 */
export async function findLeftovers(project: LoadedConfig, environment: ResolvedEnvironment, env: NodeJS.ProcessEnv, currentId: string): Promise<Leftover[]> {
  const found: Leftover[] = []
  const servers = new Map<string, string>()
  for (const ds of project.config.datastores.filter((d) => d.provider === 'postgres')) {
    const cfg = ds.postgres
    const url = (cfg?.restoreUrlEnv && env[cfg.restoreUrlEnv]) || cfg?.url || env[cfg?.urlEnv ?? 'DATABASE_URL'] || env.RETAILOPS_POSTGRES_URL
    if (!url) continue
    try {
      const t = pgTarget(url, 'postgres')
      servers.set(serverOf(t), url)
    } catch {
      // reported by the plan
    }
  }
  await Promise.all(
    [...servers].map(async ([server, url]) => {
      const client = await pgConnect(pgTarget(url, 'postgres'), 'retailops-dr-leftovers').catch(() => undefined)
      if (!client) return
      try {
        const rows = await client.query<{datname: string}>('select datname from pg_database where starts_with(datname, $1) order by datname', [DRILL_DB_PREFIX])
        for (const {datname} of rows.rows) {
          const id = /^retailops_drill_(\d{8}_\d{6}_[0-9a-f]{4})_/.exec(datname)?.[1]?.replaceAll('_', '-')
          if (id === currentId) continue
          found.push({kind: 'scratch database', name: datname, where: server, drillId: id, command: `psql "$URL" -c 'DROP DATABASE "${datname}" WITH (FORCE)'`})
        }
      } finally {
        await client.end().catch(() => {})
      }
    }),
  )
  if (project.config.datastores.some((d) => d.provider === 'kubernetes')) {
    try {
      const {kubeClients} = await import('../kubernetes/client.js')
      const k = kubeClients({context: environment.context, kubeconfig: environment.kubeconfig})
      const list = await k.core.listNamespace({labelSelector: DRILL_LABEL})
      for (const ns of list.items) {
        const id = ns.metadata?.labels?.[DRILL_LABEL]
        if (id === currentId || ns.metadata?.deletionTimestamp) continue
        found.push({kind: 'namespace', name: ns.metadata!.name!, where: k.context, drillId: id, command: `kubectl --context ${k.context} delete namespace ${ns.metadata!.name}`})
      }
    } catch {
      // the drill itself reports an unreachable cluster
    }
  }
  return found
}
