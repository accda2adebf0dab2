import {describe, expect, it} from 'vitest'

import {deploymentRolloutState, diagnose, explainPods} from '../../../src/kubernetes/rollout-status.js'

const dep = (status: Record<string, unknown>, generation = 2, replicas = 3) => ({
  metadata: {name: 'checkout', namespace: 'shop', generation, uid: 'u1'},
  spec: {replicas},
  status: {observedGeneration: 2, ...status},
})

describe('deploymentRolloutState', () => {
  it('follows kubectl rollout status', () => {
    expect(deploymentRolloutState(dep({}, 3)).phase).toBe('progressing')
    expect(deploymentRolloutState(dep({replicas: 3, updatedReplicas: 1})).message).toBe('1 of 3 new replicas updated')
    expect(deploymentRolloutState(dep({replicas: 4, updatedReplicas: 3})).message).toBe(
      '1 old replica pending termination',
    )
    expect(deploymentRolloutState(dep({replicas: 3, updatedReplicas: 3, availableReplicas: 2})).message).toBe(
      '2 of 3 updated replicas available',
    )
    expect(deploymentRolloutState(dep({replicas: 3, updatedReplicas: 3, availableReplicas: 3}))).toEqual({
      phase: 'complete',
      message: '3 of 3 replicas available',
    })
  })

  it('treats ProgressDeadlineExceeded as failure', () => {
    const s = deploymentRolloutState(
      dep({
        replicas: 3,
        updatedReplicas: 3,
        availableReplicas: 0,
        conditions: [
          {
            type: 'Progressing',
            status: 'False',
            reason: 'ProgressDeadlineExceeded',
            message: 'ReplicaSet "checkout-7d" has timed out progressing.',
          },
        ],
      }),
    )
    expect(s).toEqual({
      phase: 'failed',
      message: 'checkout exceeded its progress deadline: ReplicaSet "checkout-7d" has timed out progressing.',
    })
  })
})

const rs = {
  metadata: {
    name: 'checkout-7d',
    annotations: {'deployment.kubernetes.io/revision': '2'},
    ownerReferences: [{uid: 'u1'}],
    labels: {'pod-template-hash': '7d'},
  },
}
const oldRs = {
  metadata: {
    name: 'checkout-5c',
    annotations: {'deployment.kubernetes.io/revision': '1'},
    ownerReferences: [{uid: 'u1'}],
    labels: {'pod-template-hash': '5c'},
  },
}

describe('diagnose', () => {
  it('explains CrashLoopBackOff with container, restart count and exit code, only for the new ReplicaSet', () => {
    const crash = (name: string, hash: string) => ({
      metadata: {name, labels: {'pod-template-hash': hash}},
      status: {
        phase: 'Running',
        conditions: [{type: 'PodScheduled', status: 'True'}],
        containerStatuses: [
          {
            name: 'checkout',
            ready: false,
            restartCount: 4,
            state: {waiting: {reason: 'CrashLoopBackOff', message: 'back-off'}},
            lastState: {terminated: {exitCode: 1, reason: 'Error'}},
          },
        ],
      },
    })
    const reasons = diagnose({
      deployment: dep({}),
      replicaSets: [oldRs, rs],
      pods: [crash('checkout-7d-a', '7d'), crash('checkout-7d-b', '7d'), crash('checkout-5c-a', '5c')],
      events: [],
    })
    expect(reasons).toEqual([
      '2 pods (checkout-7d-a, checkout-7d-b): container "checkout" is in CrashLoopBackOff: restarted 4 times, last exit code 1 (Error)',
    ])
  })

  it('explains Unschedulable from the FailedScheduling event', () => {
    const pod = {
      metadata: {name: 'checkout-7d-a', labels: {'pod-template-hash': '7d'}},
      spec: {
        nodeSelector: {'retailops.dev/pool': 'memory-optimised'},
        containers: [{name: 'checkout', resources: {requests: {cpu: '64', memory: '1Gi'}}}],
      },
      status: {
        phase: 'Pending',
        conditions: [
          {type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/9 nodes are available'},
        ],
      },
    }
    const events = [
      {
        involvedObject: {kind: 'Pod', name: 'checkout-7d-a'},
        reason: 'FailedScheduling',
        message: "0/9 nodes are available: 3 Insufficient cpu, 6 node(s) didn't match Pod's node affinity/selector.",
        lastTimestamp: '2026-11-25T08:00:00Z',
      },
    ]
    expect(diagnose({deployment: dep({}), replicaSets: [rs], pods: [pod], events})).toEqual([
      "1 pod (checkout-7d-a): Unschedulable: 0/9 nodes are available: 3 Insufficient cpu, 6 node(s) didn't match Pod's node affinity/selector. (node selector retailops.dev/pool=memory-optimised); each pod requests 64 CPU / 1Gi memory",
    ])
  })

  it('explains quota refusals from FailedCreate on the ReplicaSet', () => {
    const events = [
      {
        involvedObject: {kind: 'ReplicaSet', name: 'checkout-7d'},
        reason: 'FailedCreate',
        message:
          'pods "checkout-7d-x" is forbidden: exceeded quota: tenant-quota, requested: pods=1, used: pods=2, limited: pods=2',
      },
    ]
    const d = dep({
      conditions: [
        {
          type: 'ReplicaFailure',
          status: 'True',
          reason: 'FailedCreate',
          message: 'pods "checkout-7d-x" is forbidden: exceeded quota: tenant-quota',
        },
      ],
    })
    const reasons = diagnose({deployment: d, replicaSets: [rs], pods: [], events})
    expect(reasons).toHaveLength(1)
    expect(reasons[0]).toMatch(/^Quota exceeded \(FailedCreate on ReplicaSet checkout-7d\): .*limited: pods=2/)
    expect(diagnose({deployment: d, replicaSets: [rs], pods: [], events: []})).toEqual([
      'Quota exceeded (FailedCreate on Deployment checkout): pods "checkout-7d-x" is forbidden: exceeded quota: tenant-quota',
    ])
  })

  it('explains image pull failures', () => {
    const pod = {
      metadata: {name: 'checkout-7d-a', labels: {'pod-template-hash': '7d'}},
      status: {
        containerStatuses: [
          {
            name: 'checkout',
            state: {waiting: {reason: 'ImagePullBackOff', message: 'Back-off pulling image "x@sha256:…"'}},
          },
        ],
      },
    }
    expect(diagnose({deployment: dep({}), replicaSets: [rs], pods: [pod], events: []})).toEqual([
      '1 pod (checkout-7d-a): container "checkout" cannot pull its image (ImagePullBackOff): Back-off pulling image "x@sha256:…"',
    ])
  })
})

describe('diagnose history', () => {
  it('ignores refusals of older ReplicaSets', () => {
    const events = [
      {
        involvedObject: {kind: 'ReplicaSet', name: 'checkout-5c'},
        reason: 'FailedCreate',
        message: 'exceeded quota: tenant-quota',
      },
    ]
    expect(diagnose({deployment: dep({}), replicaSets: [oldRs, rs], pods: [], events})).toEqual([
      '0 of 3 replicas available; no pod reported a reason',
    ])
  })
})

describe('diagnose slow nodes', () => {
  it('says when pods were scheduled but never started', () => {
    const pod = {
      metadata: {name: 'checkout-7d-a', labels: {'pod-template-hash': '7d'}},
      status: {phase: 'Pending', conditions: [{type: 'PodScheduled', status: 'True'}]},
    }
    expect(diagnose({deployment: dep({}), replicaSets: [rs], pods: [pod], events: []})).toEqual([
      '1 pod (checkout-7d-a): scheduled but not started yet (Pending, no container status from the node): the node is slow or not running pods',
    ])
  })
})

describe('explainPods: the one not-Ready explainer (deploy, rollout, prewarm, drill)', () => {
  const pod = (name: string, extra: Record<string, unknown> = {}) => ({
    metadata: {name, ...extra},
    status: {
      phase: 'Running',
      conditions: [
        {type: 'PodScheduled', status: 'True'},
        {type: 'Ready', status: 'False'},
      ],
      containerStatuses: [
        {
          name: 'app',
          ready: false,
          restartCount: 1,
          state: {waiting: {reason: 'CrashLoopBackOff'}},
          lastState: {terminated: {exitCode: 1}},
        },
      ],
    },
  })

  it('groups pods with the same reason and says nothing about Ready or terminating pods', () => {
    const ready = {
      metadata: {name: 'ok'},
      status: {
        phase: 'Running',
        conditions: [
          {type: 'PodScheduled', status: 'True'},
          {type: 'Ready', status: 'True'},
        ],
        containerStatuses: [{name: 'app', ready: true, state: {running: {}}}],
      },
    }
    expect(explainPods([pod('a'), pod('b'), pod('gone', {deletionTimestamp: '2026-12-06T18:00:00Z'}), ready])).toEqual([
      '2 pods (a, b): container "app" is in CrashLoopBackOff: restarted 1 time, last exit code 1',
    ])
  })

  it('uses the scheduler event for an unschedulable pod', () => {
    const pending = {
      metadata: {name: 'p'},
      spec: {containers: [{name: 'app', resources: {requests: {cpu: '4', memory: '1Gi'}}}]},
      status: {phase: 'Pending', conditions: [{type: 'PodScheduled', status: 'False', reason: 'Unschedulable'}]},
    }
    const events = [
      {
        involvedObject: {kind: 'Pod', name: 'p'},
        reason: 'FailedScheduling',
        message: '0/3 nodes are available: 3 Insufficient cpu.',
        lastTimestamp: '2026-12-06T18:00:00Z',
      },
    ]
    expect(explainPods([pending], events)).toEqual([
      '1 pod (p): Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.; each pod requests 4 CPU / 1Gi memory',
    ])
  })
})
