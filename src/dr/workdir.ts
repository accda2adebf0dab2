import {readFileSync} from 'node:fs'
import {chmod, lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {RetailOpsError} from '../errors/index.js'
import {isDrillId} from './naming.js'

/**
 * Each drill's private working folder: <root>/<drill id>/, mode 0700 under a 0700 root the user
 * owns, holding dumps (production data) and 0600 password files. Its lease.json says which
 * process runs the drill and which targets it created, written *before* each target exists, so
 * when a drill is killed outright (SIGKILL, OOM, a lost runner) the next drill on this host can
 * tell that it is dead and remove what it left: the folder, its scratch databases, its namespaces.
 */
export const WORK_DIR_ENV = 'RETAILOPS_DR_WORK_DIR'

/** $RETAILOPS_DR_WORK_DIR, else $XDG_STATE_HOME/retailops/dr-work, else ~/.local/state/retailops/dr-work. */
export function workRoot(env: NodeJS.ProcessEnv): string {
  if (env[WORK_DIR_ENV]) return path.resolve(env[WORK_DIR_ENV])
  const state =
    env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME)
      ? env.XDG_STATE_HOME
      : path.join(os.homedir(), '.local', 'state')
  return path.join(state, 'retailops', 'dr-work')
}

export interface LeaseTarget {
  kind: 'scratch database' | 'namespace'
  name: string
  /** host:port of the PostgreSQL server, or the kube context. */
  where: string
}

export interface Lease {
  drillId: string
  pid: number
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat), so a reused pid is not mistaken for the drill. */
  processStart?: string
  host: string
  startedAt: string
  targets: LeaseTarget[]
}

/** Field 22 of /proc/<pid>/stat, or undefined where there is no /proc or no such process. */
export function processStart(pid: number): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as {code?: string}).code === 'EPERM'
  }
}

/** Whether the lease's drill is certainly gone: run on this host by a process that no longer exists (or is another process now). */
export function leaseIsDead(lease: Lease): boolean {
  if (lease.host !== os.hostname()) return false
  if (!alive(lease.pid)) return true
  const start = processStart(lease.pid)
  return lease.processStart !== undefined && start !== undefined && start !== lease.processStart
}

/**
 * Creates dir (and its parents) so that it is a real directory, owned by this user, mode 0700.
 * A path that is a symlink, or a folder someone else owns, is refused: dumps must not land where
 * another user can read or swap them.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, {recursive: true, mode: 0o700})
  const info = await lstat(dir)
  const uid = process.getuid?.()
  if (!info.isDirectory() || info.isSymbolicLink() || (uid !== undefined && info.uid !== uid)) {
    throw new RetailOpsError(
      'PERMISSION',
      `${dir} is not a private folder of this user (${info.isSymbolicLink() ? 'a symbolic link' : !info.isDirectory() ? 'not a folder' : `owned by uid ${info.uid}`}); drills keep database dumps there.`,
      {
        nextSteps: [`Remove it, or point ${WORK_DIR_ENV} at a folder only you can use.`],
      },
    )
  }
  if ((info.mode & 0o777) !== 0o700) await chmod(dir, 0o700)
}

export class DrillWorkDir {
  private constructor(
    readonly dir: string,
    private readonly lease: Lease,
  ) {}

  /** <root>/<drillId>, private, with its lease written before anything else goes in. */
  static async create(root: string, drillId: string): Promise<DrillWorkDir> {
    await ensurePrivateDir(root)
    const dir = path.join(root, drillId)
    await mkdir(dir, {mode: 0o700})
    await chmod(dir, 0o700)
    const work = new DrillWorkDir(dir, {
      drillId,
      pid: process.pid,
      processStart: processStart(process.pid),
      host: os.hostname(),
      startedAt: new Date().toISOString(),
      targets: [],
    })
    await work.save()
    return work
  }

  /** Records a target before it is created, so a killed drill's successor can remove it. */
  async addTarget(target: LeaseTarget): Promise<void> {
    this.lease.targets.push(target)
    await this.save()
  }

  private async save(): Promise<void> {
    const tmp = path.join(this.dir, 'lease.json.tmp')
    await writeFile(tmp, `${JSON.stringify(this.lease, null, 2)}\n`, {mode: 0o600})
    await rename(tmp, path.join(this.dir, 'lease.json'))
  }

  /** Removes the folder; keeps only the lease when a target could not be removed (the next drill retries). */
  async close(keepLease: boolean): Promise<void> {
    if (!keepLease) {
      await rm(this.dir, {recursive: true, force: true})
      return
    }
    for (const entry of await readdir(this.dir))
      if (entry !== 'lease.json') await rm(path.join(this.dir, entry), {recursive: true, force: true})
  }
}

export interface DeadDrill {
  drillId: string
  dir: string
  lease?: Lease
}

/** Work folders of drills on this host whose process is gone (a folder without a lease counts when it is over an hour old). */
export async function findDeadDrills(root: string, currentId: string): Promise<DeadDrill[]> {
  let entries: string[]
  try {
    entries = await readdir(root)
  } catch {
    return []
  }
  const dead: DeadDrill[] = []
  for (const id of entries.filter((e) => isDrillId(e) && e !== currentId)) {
    const dir = path.join(root, id)
    let lease: Lease | undefined
    try {
      lease = JSON.parse(await readFile(path.join(dir, 'lease.json'), 'utf8')) as Lease
    } catch {
      const info = await stat(dir).catch(() => undefined)
      if (info && Date.now() - info.mtimeMs > 3_600_000) dead.push({drillId: id, dir})
      continue
    }
    if (leaseIsDead(lease)) dead.push({drillId: id, dir, lease})
  }
  return dead
}
