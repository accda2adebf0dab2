import {describe, expect, it} from 'vitest'

import {renderJobRun, renderJobsStatus} from '../../../src/jobs/render.js'
import {jobFromCronJob, manualJobName} from '../../../src/jobs/run.js'
import {byNewest, jobRun, runPod} from '../../../src/jobs/runs.js'
import type {CronJob} from '../../../src/kubernetes/kinds.js'

const cron: CronJob = {
  metadata: {name: 'reconcile', namespace: 'shop', uid: 'uid-1', labels: {'retailops.dev/job': 'reconcile'}},
  spec: {
    schedule: '*/30 * * * *',
    jobTemplate: {
      metadata: {labels: {'retailops.dev/job': 'reconcile', 'app.kubernetes.io/version': '2'}},
      spec: {backoffLimit: 1, template: {spec: {containers: [{name: 'reconcile', image: 'r@sha256:1'}]}}},
    },
  } as CronJob['spec'],
}

describe('jobs run', () => {
  it('creates what kubectl create job --from=cronjob creates: template, manual annotation, the CronJob as controller', () => {
    const name = manualJobName('reconcile')
    expect(name).toMatch(/^reconcile-manual-[0-9a-f]{5}$/)
    expect(manualJobName('x'.repeat(80)).length).toBeLessThanOrEqual(63)
    const job = jobFromCronJob(cron, name)
    expect(job.metadata).toMatchObject({
      name,
      namespace: 'shop',
      labels: {'retailops.dev/job': 'reconcile', 'app.kubernetes.io/version': '2'},
      annotations: {'cronjob.kubernetes.io/instantiate': 'manual'},
      ownerReferences: [
        {
          apiVersion: 'batch/v1',
          kind: 'CronJob',
          name: 'reconcile',
          uid: 'uid-1',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    })
    expect(job.spec).toEqual(cron.spec!.jobTemplate.spec)
  })

  it('reads a Job as a run: outcome from its conditions, duration from start to completion or failure', () => {
    const ok = jobRun({
      metadata: {
        name: 'a',
        creationTimestamp: '2026-01-01T00:00:00Z',
        annotations: {'cronjob.kubernetes.io/instantiate': 'manual'},
      },
      status: {
        startTime: '2026-01-01T00:00:01Z',
        completionTime: '2026-01-01T00:01:31Z',
        succeeded: 1,
        conditions: [{type: 'Complete', status: 'True'}],
      },
    })
    expect(ok).toMatchObject({trigger: 'manual', outcome: 'succeeded', durationMs: 90_000, succeeded: 1, failed: 0})
    const failed = jobRun({
      metadata: {name: 'b', creationTimestamp: '2026-01-01T00:02:00Z'},
      status: {
        startTime: '2026-01-01T00:02:00Z',
        failed: 2,
        conditions: [
          {
            type: 'Failed',
            status: 'True',
            reason: 'DeadlineExceeded',
            message: 'Job was active longer than specified deadline',
            lastTransitionTime: '2026-01-01T00:02:05Z',
          },
        ],
      },
    })
    expect(failed).toMatchObject({
      trigger: 'scheduled',
      outcome: 'failed',
      reason: 'DeadlineExceeded',
      durationMs: 5000,
    })
    const running = jobRun({
      metadata: {name: 'c', creationTimestamp: '2026-01-01T00:03:00Z'},
      status: {active: 1},
    })
    expect(running).toMatchObject({outcome: 'running', durationMs: undefined})
    expect([ok, failed, running].sort(byNewest).map((r) => r.name)).toEqual(['c', 'b', 'a'])
  })

  it('summarises pods: where they ran, exit code, or why they never did', () => {
    expect(
      runPod({
        metadata: {name: 'p1'},
        spec: {nodeName: 'n1', containers: []},
        status: {
          phase: 'Failed',
          containerStatuses: [{name: 'x', state: {terminated: {exitCode: 3, reason: 'Error'}}}],
        },
      }),
    ).toEqual({name: 'p1', phase: 'Failed', node: 'n1', exitCode: 3, reason: 'Error'})
    expect(
      runPod({
        metadata: {name: 'p2'},
        spec: {containers: []},
        status: {
          phase: 'Pending',
          conditions: [
            {type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/12 nodes are available'},
          ],
        },
      }),
    ).toEqual({name: 'p2', phase: 'Pending', reason: 'Unschedulable', message: '0/12 nodes are available'})
  })

  it('renders the run and the status table', () => {
    const text = renderJobRun({
      job: 'reconcile',
      namespace: 'shop',
      name: 'reconcile-manual-abcde',
      cronJob: 'reconcile',
      image: 'r@sha256:1',
      outcome: 'failed',
      run: {
        name: 'reconcile-manual-abcde',
        trigger: 'manual',
        outcome: 'failed',
        reason: 'BackoffLimitExceeded',
        message: 'Job has reached the specified backoff limit',
        succeeded: 0,
        failed: 2,
      },
      pods: [{name: 'p1', phase: 'Failed', node: 'n1', exitCode: 3, reason: 'Error'}],
      explanation: [],
      logs: [{pod: 'p1', lines: ['mismatch orphaned-reservation: r1']}],
    })
    expect(text).toContain('BackoffLimitExceeded: Job has reached the specified backoff limit')
    expect(text).toContain('p1  Failed on n1  exit 3  Error')
    expect(text).toContain('  mismatch orphaned-reservation: r1')
    const table = renderJobsStatus({
      environment: 'production',
      namespace: 'shop',
      failing: [],
      jobs: [
        {job: 'reindex', namespace: 'shop', deployed: true, oneOff: true, suspended: true, active: [], runs: []},
        {
          job: 'sync',
          namespace: 'shop',
          deployed: false,
          oneOff: false,
          schedule: '@hourly',
          suspended: false,
          active: [],
          runs: [],
        },
      ],
    })
    expect(table).toMatch(/reindex\s+one-off\s+idle\s+-\s+-\s+jobs run/)
    expect(table).toMatch(/sync\s+@hourly\s+not deployed/)
  })
})
