import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {
  DrillWorkDir,
  ensurePrivateDir,
  findDeadDrills,
  leaseIsDead,
  processStart,
  workRoot,
} from '../../../src/dr/workdir.js'

/** The pid of a process that has exited. */
function deadPid(): number {
  return Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']))
}

describe('drill work folders', () => {
  it('live under a retailops-owned state path, or RETAILOPS_DR_WORK_DIR', () => {
    expect(workRoot({RETAILOPS_DR_WORK_DIR: '/srv/drills'})).toBe('/srv/drills')
    expect(workRoot({XDG_STATE_HOME: '/state'})).toBe('/state/retailops/dr-work')
    expect(workRoot({})).toBe(path.join(os.homedir(), '.local/state/retailops/dr-work'))
  })
  it('are private (0700) and refuse a symlink or a folder made too open', async () => {
    const base = mkdtempSync(path.join(os.tmpdir(), 'ro-work-'))
    const root = path.join(base, 'root')
    const work = await DrillWorkDir.create(root, '20260509-120301-7f3a')
    expect(statSync(root).mode & 0o777).toBe(0o700)
    expect(statSync(work.dir).mode & 0o777).toBe(0o700)
    const lease = JSON.parse(readFileSync(path.join(work.dir, 'lease.json'), 'utf8'))
    expect(lease).toMatchObject({drillId: '20260509-120301-7f3a', pid: process.pid, host: os.hostname(), targets: []})
    expect(statSync(path.join(work.dir, 'lease.json')).mode & 0o777).toBe(0o600)
    await work.addTarget({
      kind: 'scratch database',
      name: 'retailops_drill_20260509_120301_7f3a_x',
      where: '127.0.0.1:5432',
    })
    expect(JSON.parse(readFileSync(path.join(work.dir, 'lease.json'), 'utf8')).targets).toHaveLength(1)
    await work.close(false)
    expect(existsSync(work.dir)).toBe(false)

    const open = path.join(base, 'open')
    mkdirSync(open, {mode: 0o777})
    await ensurePrivateDir(open)
    expect(statSync(open).mode & 0o777).toBe(0o700)
    const link = path.join(base, 'link')
    symlinkSync(open, link)
    await expect(ensurePrivateDir(link)).rejects.toMatchObject({
      exit: 'PERMISSION',
      message: expect.stringMatching(/a symbolic link/),
    })
  })
  it("of a dead process are found; a live drill's, another host's and a reused pid's are told apart", async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'ro-dead-'))
    const lease = (id: string, fields: object) => {
      mkdirSync(path.join(root, id))
      writeFileSync(
        path.join(root, id, 'lease.json'),
        JSON.stringify({drillId: id, host: os.hostname(), startedAt: '', targets: [], ...fields}),
      )
    }
    lease('20260101-000000-dead', {pid: deadPid()})
    lease('20260101-000000-a11e', {pid: process.pid, processStart: processStart(process.pid)})
    lease('20260101-000000-0e1e', {pid: deadPid(), host: 'another-host'})
    lease('20260101-000000-5e5e', {pid: process.pid, processStart: '1'})
    const dead = await findDeadDrills(root, 'current')
    expect(dead.map((d) => d.drillId).sort()).toEqual(['20260101-000000-5e5e', '20260101-000000-dead'])
    expect(
      leaseIsDead({
        drillId: 'x',
        pid: process.pid,
        processStart: processStart(process.pid),
        host: os.hostname(),
        startedAt: '',
        targets: [],
      }),
    ).toBe(false)
  })
})
