import {describe, expect, it} from 'vitest'

import {ciJob, describeLease, leaseAlive, newLease, RUN_ID} from '../../../src/rollout/store.js'

describe('rollout lease identity', () => {
  it('carries a random run id, the host, the pid and the CI job', () => {
    const lease = newLease()
    expect(lease.id).toBe(RUN_ID)
    expect(lease.id).toMatch(/^[0-9a-f-]{36}$/)
    expect(lease.pid).toBe(process.pid)
    expect(describeLease(lease)).toContain(`pid ${process.pid}, run ${RUN_ID}`)
  })

  it('names the CI job from the usual variables', () => {
    expect(
      ciJob({GITHUB_RUN_ID: '99', GITHUB_RUN_ATTEMPT: '2', GITHUB_JOB: 'deploy', GITHUB_REPOSITORY: 'shop/app'}),
    ).toBe('github shop/app run 99.2 job deploy')
    expect(ciJob({GITLAB_CI: 'true', CI_JOB_ID: '7'})).toBe('gitlab job 7')
    expect(ciJob({})).toBeUndefined()
  })

  it('a holder in another container with the same host name and a pid not visible here stays alive until it expires', () => {
    const lease = {...newLease(), pid: 999_999, processSpace: 'same-host|other-boot|pid:[1]', id: 'other'}
    expect(leaseAlive(lease)).toBe(true)
    expect(leaseAlive(lease, Date.parse(lease.renewedAt) + (lease.ttlSeconds + 1) * 1000)).toBe(false)
  })

  it('a holder in this very process space whose process is gone holds nothing', () => {
    const lease = {...newLease(), pid: 999_999, id: 'other'}
    expect(leaseAlive(lease)).toBe(false)
  })
})
