import type {LoadedConfig} from '../config/load.js'
import type {ResolvedEnvironment} from '../config/resolve.js'
import {rm} from 'node:fs/promises'
import path from 'node:path'

import {DRILL_DB_PREFIX, DRILL_LABEL, isDrillDatabase, isDrillNamespace} from './naming.js'
import {pgConnect, pgTarget, type PgTarget, serverOf} from './pg.js'
import {findDeadDrills} from './workdir.js'

export interface Leftover {
  kind: 'scratch database' | 'namespace' | 'work folder'
  name: string
  where: string
  /** The drill that made it, when its name or label says. */
  drillId?: string
  /** How to remove it by hand. */
  command: string
  /** present: reported, left alone; removed: its drill was dead, so this drill removed it; failed: removing it failed (detail says why). */
  status: 'present' | 'removed' | 'failed'
  detail?: string
}

/** One place the leftovers check could not look into: said as such, never read as "none found". */
export interface LeftoverCheckFailure {
  /** What could not be checked: "scratch databases on 127.0.0.1:5432", "drill namespaces in kwok". */
  what: string
  /** Why: the error as the system gave it. */
  reason: string
  /** How to look by hand. */
  command: string
}

/** The outcome of looking for leftovers: what was looked at, and what could not be checked. */
export interface LeftoverCheck {
  /** checked: every place was looked into; failed: none could be; partial: some could not. */
  status: 'checked' | 'partial' | 'failed' | 'skipped'
  checked: string[]
  failures: LeftoverCheckFailure[]
}

const reasonOf = (error: unknown) =>
  (error as {code?: string}).code && !(error as Error).message?.includes((error as {code: string}).code)
    ? `${(error as {code: string}).code}: ${(error as Error).message}`
    : ((error as Error).message ?? String(error))

/** "The check … failed for …" for each place the check could not look into. */
export function describeCheckFailures(check: LeftoverCheck): string[] {
  return check.failures.map(
    (f) =>
      `The check for leftovers of earlier drills failed for ${f.what} (${f.reason}): leftovers there are unknown, not absent; look by hand with: ${f.command}`,
  )
}

/** The servers the configuration reaches, by host:port, with credentials (for the postgres database). */
function configuredServers(project: LoadedConfig, env: NodeJS.ProcessEnv): Map<string, PgTarget> {
  const servers = new Map<string, PgTarget>()
  for (const ds of project.config.datastores.filter((d) => d.provider === 'postgres')) {
    const cfg = ds.postgres
    for (const url of [
      cfg?.restoreUrlEnv && env[cfg.restoreUrlEnv],
      cfg?.url ?? env[cfg?.urlEnv ?? 'DATABASE_URL'] ?? env.RETAILOPS_POSTGRES_URL,
    ]) {
      if (!url) continue
      try {
        const t = pgTarget(url, 'postgres')
        if (!servers.has(serverOf(t))) servers.set(serverOf(t), t)
      } catch {
        // reported by the plan
      }
    }
  }
  return servers
}

/**
 * Targets of earlier drills that are still there: a drill killed outright (a second Ctrl-C, an
 * OOM kill, a lost CI runner) cannot clean up. They are reported, never removed, because another
 * drill may be running right now.
 */
export async function findLeftovers(
  project: LoadedConfig,
  environment: ResolvedEnvironment,
  env: NodeJS.ProcessEnv,
  currentId: string,
): Promise<{leftovers: Leftover[]; check: LeftoverCheck}> {
  const found: Leftover[] = []
  const checked: string[] = []
  const failures: LeftoverCheckFailure[] = []
  await Promise.all(
    [...configuredServers(project, env)].map(async ([server, target]) => {
      const what = `scratch databases on ${server}`
      const command = `psql "$URL" -c "select datname from pg_database where datname like '${DRILL_DB_PREFIX}%'"`
      let client: Awaited<ReturnType<typeof pgConnect>>
      try {
        client = await pgConnect(target, 'retailops-dr-leftovers')
      } catch (error) {
        failures.push({what, reason: reasonOf(error), command})
        return
      }
      try {
        const rows = await client.query<{datname: string}>(
          'select datname from pg_database where starts_with(datname, $1) order by datname',
          [DRILL_DB_PREFIX],
        )
        for (const {datname} of rows.rows) {
          const id = /^retailops_drill_(\d{8}_\d{6}_[0-9a-f]{4})_/.exec(datname)?.[1]?.replaceAll('_', '-')
          if (id === currentId) continue
          found.push({
            kind: 'scratch database',
            name: datname,
            where: server,
            drillId: id,
            command: `psql "$URL" -c 'DROP DATABASE "${datname}" WITH (FORCE)'`,
            status: 'present',
          })
        }
        checked.push(what)
      } catch (error) {
        failures.push({what, reason: reasonOf(error), command})
      } finally {
        await client.end().catch(() => {})
      }
    }),
  )
  if (project.config.datastores.some((d) => d.provider === 'kubernetes')) {
    const what = `drill namespaces in ${environment.context ?? 'the current context'}`
    try {
      const {kubeClients, kubeHttpOf} = await import('../kubernetes/client.js')
      const {listObjects} = await import('../kubernetes/objects.js')
      const {collectionPath} = await import('../kubernetes/resources.js')
      const k = kubeClients({context: environment.context, kubeconfig: environment.kubeconfig})
      const list = await listObjects<{
        metadata?: {name?: string; labels?: Record<string, string>; deletionTimestamp?: string}
      }>(kubeHttpOf(k), collectionPath('Namespace'), {labelSelector: DRILL_LABEL})
      for (const ns of list) {
        const id = ns.metadata?.labels?.[DRILL_LABEL]
        if (id === currentId || ns.metadata?.deletionTimestamp) continue
        found.push({
          kind: 'namespace',
          name: ns.metadata!.name!,
          where: k.context,
          drillId: id,
          command: `kubectl --context ${k.context} delete namespace ${ns.metadata!.name}`,
          status: 'present',
        })
      }
      checked.push(what)
    } catch (error) {
      failures.push({
        what,
        reason: reasonOf(error),
        command: `kubectl${environment.context ? ` --context ${environment.context}` : ''} get namespaces -l ${DRILL_LABEL}`,
      })
    }
  }
  const status = failures.length === 0 ? 'checked' : checked.length === 0 ? 'failed' : 'partial'
  return {leftovers: found, check: {status, checked, failures}}
}

/**
 * Removes what drills killed outright on this host left behind: their private work folders (with
 * the dumps of production data in them), and the scratch databases and namespaces their leases
 * name. Only drills whose process is certainly gone are touched; a target whose server this
 * configuration cannot reach stays (reported failed), and so does the lease, for the next drill.
 */
export async function reclaimDeadDrills(
  project: LoadedConfig,
  environment: ResolvedEnvironment,
  env: NodeJS.ProcessEnv,
  root: string,
  currentId: string,
): Promise<Leftover[]> {
  const dead = await findDeadDrills(root, currentId)
  if (dead.length === 0) return []
  const servers = configuredServers(project, env)
  const {dropDatabase} = await import('./providers/postgres.js')
  const done: Leftover[] = []
  for (const drill of dead) {
    let failed = false
    for (const t of drill.lease?.targets ?? []) {
      const base = {kind: t.kind, name: t.name, where: t.where, drillId: drill.drillId}
      try {
        if (t.kind === 'scratch database') {
          const command = `psql "$URL" -c 'DROP DATABASE "${t.name}" WITH (FORCE)'`
          const server = servers.get(t.where)
          if (!isDrillDatabase(t.name) || !t.name.includes(drill.drillId.replaceAll('-', '_')))
            throw new Error(`${t.name} is not a scratch database of drill ${drill.drillId}`)
          if (!server) {
            failed = true
            done.push({
              ...base,
              command,
              status: 'failed',
              detail: `no datastore in this configuration reaches ${t.where}`,
            })
            continue
          }
          const result = await dropDatabase(server, t.name)
          done.push({
            ...base,
            command,
            status: 'removed',
            detail: result.status === 'absent' ? 'already gone' : 'dropped',
          })
        } else {
          const command = `kubectl --context ${t.where} delete namespace ${t.name}`
          if (!isDrillNamespace(t.name)) throw new Error(`${t.name} is not a drill namespace`)
          const {kubeClients} = await import('../kubernetes/client.js')
          const k = kubeClients({context: environment.context, kubeconfig: environment.kubeconfig})
          if (k.context !== t.where) {
            failed = true
            done.push({
              ...base,
              command,
              status: 'failed',
              detail: `it is on context ${t.where}; this drill uses ${k.context}`,
            })
            continue
          }
          const {deleteNamespace} = await import('./providers/kubernetes.js')
          const result = await deleteNamespace(k.kc, t.name, {wait: false})
          done.push({
            ...base,
            command,
            status: 'removed',
            detail: result.status === 'absent' ? 'already gone' : 'deletion accepted',
          })
        }
      } catch (error) {
        failed = true
        done.push({...base, command: '', status: 'failed', detail: (error as Error).message.split('\n')[0]})
      }
    }
    const {readdir} = await import('node:fs/promises')
    const files = (await readdir(drill.dir).catch(() => [] as string[])).filter((f) => !(failed && f === 'lease.json'))
    for (const f of files) await rm(path.join(drill.dir, f), {recursive: true, force: true})
    if (!failed) await rm(drill.dir, {recursive: true, force: true})
    done.push({
      kind: 'work folder',
      name: drill.dir,
      where: 'this host',
      drillId: drill.drillId,
      command: `rm -rf ${drill.dir}`,
      status: 'removed',
      detail: files.length > 0 ? `held ${files.join(', ')}` : 'empty',
    })
  }
  return done
}
