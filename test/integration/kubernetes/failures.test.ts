import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runDeploy} from '../../../src/deploy/engine.js'
import {kubeHttp} from '../../../src/kubernetes/client.js'
import {
  baseConfig,
  CONTEXT,
  digest,
  FAILING_SERVICE,
  kubeProject,
  projectImages,
  projectNs,
  type KubeProject,
} from './helpers.js'
import {testContext} from '../../support/context.js'
import {runCli} from '../../support/cli.js'

/** What a failed deploy reports, against the sandbox: policy refusals, crash loops, quota, scheduling, field conflicts. */
describe('deploy failures (sandbox)', () => {
  let t: KubeProject

  beforeAll(() => {
    t = kubeProject()
    t.config = baseConfig(
      t,
      {
        catalog: FAILING_SERVICE,
        cart: FAILING_SERVICE,
        // Needs more CPU than any node in the pool has.
        search: {
          ...FAILING_SERVICE,
          resources: {requests: {cpu: '64', memory: '128Mi'}, limits: {cpu: '64', memory: '256Mi'}},
        },
      },
      [
        {
          name: 'tight',
          model: 'dedicated-namespace',
          namespace: projectNs(t, 'tight'),
          services: ['cart'],
          quota: {pods: 1},
        },
        {name: 'main', model: 'shared'},
      ],
    )
    t.writeConfig()
  })
  afterAll(async () => t.cleanup())

  it('blocks on policy errors and applies nothing (CLI: exit 10, findings in --json)', async () => {
    const r = await runCli(
      [
        'deploy',
        'catalog',
        '--config',
        path.join(t.dir, 'retailops.yaml'),
        '--json',
        '--image',
        `catalog=127.0.0.1:5000/${t.name}/catalog:latest`,
      ],
      {env: {RETAILOPS_KUBE_CONTEXT: CONTEXT}},
    )
    expect(r.exitCode).toBe(10)
    const doc = JSON.parse(r.stdout)
    expect(doc.status).toBe(10)
    expect(doc.result.outcome).toBe('POLICY')
    expect(doc.result.policy.findings).toContainEqual(
      expect.objectContaining({severity: 'error', rule: 'image-digest', object: `Deployment ${projectNs(t)}/catalog`}),
    )
    expect(doc.result.apply.objects).toEqual([])
    await expect(
      kubeHttp({context: CONTEXT}).request('GET', `/api/v1/namespaces/${projectNs(t)}`),
    ).rejects.toMatchObject({
      statusCode: 404,
    })
  })

  it('refuses an image whose signature cannot be verified unless --skip-verify', async () => {
    const r = await runDeploy(
      {project: await t.load(), services: ['catalog'], images: projectImages(t, ['catalog'])},
      testContext(),
    )
    expect(r.outcome).toBe('POLICY')
    expect(r.signatureVerification).toBe('failed')
    expect(r.policy.findings.find((f) => f.rule === 'signature')).toMatchObject({
      severity: 'error',
      object: `Deployment ${projectNs(t)}/catalog`,
    })
    expect(r.apply.objects).toEqual([])
  })

  it('explains a crash-looping rollout (CLI: exit 11 with the container and restart count)', async () => {
    t.overlay('catalog', [
      {kind: 'Deployment', patch: {spec: {template: {metadata: {labels: {'retailops.dev/simulate': 'crashloop'}}}}}},
    ])
    try {
      const r = await runCli(
        [
          'deploy',
          'catalog',
          '--tenant',
          'main',
          '--config',
          path.join(t.dir, 'retailops.yaml'),
          '--json',
          '--skip-verify',
          '--image',
          `catalog=127.0.0.1:5000/${t.name}/catalog@${digest('c')}`,
        ],
        {env: {RETAILOPS_KUBE_CONTEXT: CONTEXT}},
      )
      expect(r.exitCode).toBe(11)
      const doc = JSON.parse(r.stdout)
      const rollout = doc.result.rollouts.find((x: {ref: string}) => x.ref === `Deployment ${projectNs(t)}/catalog`)
      expect(rollout.phase).toBe('failed')
      expect(rollout.message).toMatch(/exceeded its progress deadline/)
      expect(rollout.reasons.join('\n')).toMatch(
        /container "catalog" is in CrashLoopBackOff: restarted \d+ times?, last exit code 1/,
      )
      expect(doc.warnings.join('\n')).toMatch(/SIGNATURE VERIFICATION SKIPPED/)
    } finally {
      t.overlay('catalog', undefined)
    }
  })

  it('stops waiting at --timeout and still explains why', async () => {
    t.overlay('cart', [
      {
        kind: 'Deployment',
        patch: {
          spec: {progressDeadlineSeconds: 600, template: {metadata: {labels: {'retailops.dev/simulate': 'crashloop'}}}},
        },
      },
    ])
    try {
      const started = Date.now()
      const r = await runDeploy(
        {
          project: await t.load(),
          services: ['cart'],
          tenant: 'main',
          images: projectImages(t, ['cart'], 'd'),
          skipVerify: true,
          timeoutMs: 8000,
        },
        testContext(),
      )
      expect(Date.now() - started).toBeLessThan(60_000)
      expect(r.outcome).toBe('DEPLOY_FAILED')
      const rollout = r.rollouts.find((x) => x.name === 'cart')!
      expect(rollout.phase).toBe('timeout')
      expect(rollout.reasons.join('\n')).toMatch(/CrashLoopBackOff|scheduled but not started/)
    } finally {
      t.overlay('cart', undefined)
    }
  })

  it('explains pods the scheduler cannot place for lack of CPU', async () => {
    const r = await runDeploy(
      {
        project: await t.load(),
        services: ['search'],
        tenant: 'main',
        images: projectImages(t, ['search']),
        skipVerify: true,
      },
      testContext(),
    )
    expect(r.outcome).toBe('DEPLOY_FAILED')
    const reasons = r.rollouts.find((x) => x.name === 'search')!.reasons.join('\n')
    expect(reasons).toMatch(/Unschedulable: 0\/\d+ nodes are available: .*Insufficient cpu/)
    expect(reasons).toMatch(/each pod requests 64 CPU/)
  })

  it('explains a rollout the namespace quota refuses (FailedCreate on the ReplicaSet)', async () => {
    const c = testContext()
    const r = await runDeploy(
      {project: await t.load(), tenant: 'tight', images: projectImages(t, ['cart']), skipVerify: true},
      c,
    )
    expect(r.outcome).toBe('DEPLOY_FAILED')
    const reasons = r.rollouts.find((x) => x.name === 'cart')!.reasons.join('\n')
    expect(reasons).toMatch(
      /Quota exceeded \(FailedCreate on ReplicaSet cart-[a-z0-9]+\): .*exceeded quota: tenant-quota/,
    )
  })

  it('reports field conflicts with another manager, and takes them over with forceConflicts', async () => {
    const http = kubeHttp({context: CONTEXT})
    await runDeploy(
      {
        project: await t.load(),
        services: ['cart'],
        tenant: 'main',
        images: projectImages(t, ['cart']),
        skipVerify: true,
        wait: false,
      },
      testContext(),
    )
    // Someone else applies a different value to a field retailops owns.
    await http.request('PATCH', `/api/v1/namespaces/${projectNs(t)}/services/cart`, {
      body: {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: {name: 'cart', namespace: projectNs(t)},
        spec: {ports: [{name: 'http', port: 8080, targetPort: 9090, protocol: 'TCP'}]},
      },
      contentType: 'application/apply-patch+yaml',
      query: {fieldManager: 'hand-edit', force: true},
    })
    const r = await runDeploy(
      {
        project: await t.load(),
        services: ['cart'],
        tenant: 'main',
        images: projectImages(t, ['cart']),
        skipVerify: true,
        wait: false,
      },
      testContext(),
    )
    expect(r.outcome).toBe('DEPLOY_FAILED')
    const failure = r.apply.failed.find((f) => f.ref === `Service ${projectNs(t)}/cart`)!
    expect(failure.statusCode).toBe(409)
    expect(failure.conflicts?.join('\n')).toMatch(/hand-edit/)
    const forced = await runDeploy(
      {
        project: await t.load(),
        services: ['cart'],
        tenant: 'main',
        images: projectImages(t, ['cart']),
        skipVerify: true,
        wait: false,
        forceConflicts: true,
      },
      testContext(),
    )
    expect(forced.outcome).toBe('OK')
    const svc = await http.request<{spec: {ports: {targetPort: string}[]}}>(
      'GET',
      `/api/v1/namespaces/${projectNs(t)}/services/cart`,
    )
    expect(svc.spec.ports[0].targetPort).toBe('http')
  })

  it('takes back, without force, the fields a finished rollout of its own still holds', async () => {
    const http = kubeHttp({context: CONTEXT})
    await runDeploy(
      {
        project: await t.load(),
        services: ['cart'],
        tenant: 'main',
        images: projectImages(t, ['cart']),
        skipVerify: true,
        wait: false,
      },
      testContext(),
    )
    // A rollout that ended left its manager owning a field deploy renders (as a route restore does).
    await http.request('PATCH', `/api/v1/namespaces/${projectNs(t)}/services/cart`, {
      body: {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: {name: 'cart', namespace: projectNs(t)},
        spec: {ports: [{name: 'http', port: 8080, targetPort: 9191, protocol: 'TCP'}]},
      },
      contentType: 'application/apply-patch+yaml',
      query: {fieldManager: 'retailops-rollout', force: true},
    })
    const r = await runDeploy(
      {
        project: await t.load(),
        services: ['cart'],
        tenant: 'main',
        images: projectImages(t, ['cart']),
        skipVerify: true,
        wait: false,
      },
      testContext(),
    )
    expect(r.outcome).toBe('OK')
    const svc = await http.request<{
      spec: {ports: {targetPort: string}[]}
      metadata: {managedFields: {manager: string; fieldsV1?: unknown}[]}
    }>('GET', `/api/v1/namespaces/${projectNs(t)}/services/cart`)
    expect(svc.spec.ports[0].targetPort).toBe('http')
    expect(
      JSON.stringify(svc.metadata.managedFields.find((m) => m.manager === 'retailops-rollout')?.fieldsV1 ?? {}),
    ).not.toContain('targetPort')
  })

  it('an apply the API server rejects fails the deploy with its message', async () => {
    t.overlay('catalog', [{kind: 'Service', patch: {spec: {type: 'NoSuchType'}}}])
    try {
      const r = await runDeploy(
        {
          project: await t.load(),
          services: ['catalog'],
          tenant: 'main',
          images: projectImages(t, ['catalog']),
          skipVerify: true,
          wait: false,
        },
        testContext(),
      )
      expect(r.outcome).toBe('DEPLOY_FAILED')
      expect(r.apply.failed[0]).toMatchObject({ref: `Service ${projectNs(t)}/catalog`, statusCode: 422})
      expect(r.apply.failed[0].message).toMatch(/NoSuchType/)
      expect(r.apply.skipped).toContain(`Deployment ${projectNs(t)}/catalog`)
    } finally {
      t.overlay('catalog', undefined)
    }
  })
})
