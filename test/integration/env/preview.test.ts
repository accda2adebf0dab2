// Preview environments against the sandbox's real kube-apiserver and controllers: two previews and
// production of one project side by side (each its own namespace and applyset); bad input, a
// branch without built images and unverifiable images refused before anything is created;
// a preview refused part-way by admission is deleted rather than left half-made; destroying a
// preview and sweeping an expired one leave the others byte-for-byte unchanged.
import {execFileSync} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {applySetId} from '../../../src/deploy/render.js'
import {kubeHttp} from '../../../src/kubernetes/client.js'
import {runCliJson} from '../../support/cli.js'
import {randomName} from '../../support/names.js'
import {tempProject, type TempProject} from '../../support/project.js'
import {eventually, sandboxEnv} from '../../support/sandbox.js'

const sandbox = sandboxEnv()
const PROJECT = randomName('t-env')
const PROD = PROJECT
const ns = (name: string) => `${PROJECT}-preview-${name}`
const digest = (c: string) => `sha256:${c.repeat(64)}`
const image = (service: string, c: string) => `${sandbox.registry}/${PROJECT}/${service}@${digest(c)}`

const config = (required: boolean) => `
project: ${PROJECT}
registry: {url: "${sandbox.registry}", insecure: true}
signing: {required: ${required}}
clusters: {main: {context: ${sandbox.context}}}
environments:
  production: {cluster: main, namespace: ${PROD}}
services:
  catalog:
    tier: operational
    secrets: [catalog-api-key]
    configMaps: [catalog-settings]
    scaling: {minReplicas: 1, maxReplicas: 2}
    rollout: {progressDeadline: 2m}
  cart:
    tier: operational
    dependsOn: [catalog]
    scaling: {minReplicas: 1, maxReplicas: 2}
    rollout: {progressDeadline: 2m}
`

const lock = (digests: Record<string, string>) =>
  JSON.stringify(
    {
      lockfileVersion: 1,
      artifacts: Object.fromEntries(
        Object.entries(digests).map(([service, c]) => [
          service,
          {
            repository: `${sandbox.registry}/${PROJECT}/${service}`,
            digest: digest(c),
            image: image(service, c),
            tag: `1-${c}`,
            pushedAt: '2026-12-06T00:00:00Z',
          },
        ]),
      ),
    },
    null,
    2,
  )

type Obj = {
  apiVersion?: string
  kind?: string
  metadata: {
    name: string
    namespace?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
    deletionTimestamp?: string
  }
  spec?: any
  data?: Record<string, string>
}

/** The kinds a preview and a deployed environment hold. */
const KINDS = [
  ['api/v1', 'configmaps'],
  ['api/v1', 'secrets'],
  ['api/v1', 'services'],
  ['api/v1', 'serviceaccounts'],
  ['api/v1', 'resourcequotas'],
  ['api/v1', 'limitranges'],
  ['apis/apps/v1', 'deployments'],
  ['apis/autoscaling/v2', 'horizontalpodautoscalers'],
  ['apis/networking.k8s.io/v1', 'networkpolicies'],
  ['apis/policy/v1', 'poddisruptionbudgets'],
] as const

describe('env: preview environments', () => {
  const http = kubeHttp({context: sandbox.context})
  let project: TempProject
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], {cwd: project.dir}).toString()
  const cli = (args: string[], env: Record<string, string> = {}) =>
    runCliJson(args, {cwd: project.dir, env: {RETAILOPS_OWNER: 'alice', ...env}})
  const get = <T = Obj>(p: string) =>
    http.request<T>('GET', p).then(
      (o) => o,
      () => undefined,
    )
  const previewNamespaces = async () =>
    (
      await http.request<{items: Obj[]}>('GET', '/api/v1/namespaces', {
        query: {labelSelector: `retailops.dev/preview-of=${PROJECT}`},
      })
    ).items
  /** Everything in a namespace (and the namespace) as JSON, minus what the server and controllers change on their own. */
  const contents = async (namespace: string) => {
    const out: unknown[] = []
    const strip = (o: Obj) => {
      const {resourceVersion: _rv, managedFields: _mf, ...metadata} = o.metadata as Record<string, unknown>
      const {status: _s, ...rest} = o as Obj & {status?: unknown}
      return {...rest, metadata}
    }
    out.push(strip((await get<Obj>(`/api/v1/namespaces/${namespace}`))!))
    for (const [api, plural] of KINDS) {
      const list = await http.request<{items: Obj[]}>('GET', `/${api}/namespaces/${namespace}/${plural}`)
      for (const o of list.items.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)))
        out.push({plural, ...strip(o)})
    }
    return JSON.stringify(out)
  }

  beforeAll(async () => {
    project = await tempProject(
      config(false),
      {'.retailops/artifacts.lock.json': lock({catalog: 'a', cart: 'a'})},
      't-env',
    )
    writeFileSync(path.join(project.dir, 'strict.yaml'), config(true))
    git('init', '-q', '-b', 'main')
    git('add', '-A')
    git('commit', '-qm', 'main')
    git('checkout', '-qb', 'feature-cart')
    writeFileSync(path.join(project.dir, '.retailops/artifacts.lock.json'), lock({catalog: 'a', cart: 'b'}))
    git('commit', '-qam', 'cart built from feature-cart')
    git('checkout', '-qb', 'not-built', 'main')
    git('rm', '-q', '.retailops/artifacts.lock.json')
    git('commit', '-qm', 'no lock')
    git('checkout', '-q', 'main')
    const deployed = await cli(['deploy', '--skip-verify', '--timeout', '4m'])
    expect(deployed.exitCode, deployed.stderr).toBe(0)
  }, 300_000)

  afterAll(async () => {
    for (const n of [PROD, ...['a', 'b', 'c', 'imposter', 'broken'].map(ns)])
      await http.request('DELETE', `/api/v1/namespaces/${n}`).catch(() => undefined)
    http.close()
    await project?.remove()
  })

  it('refuses bad names, TTLs, branches without built images and unverifiable images, creating nothing', async () => {
    const cases: [string[], number, string][] = [
      [['env', 'create', 'Bad_Name'], 2, 'Preview name "Bad_Name"'],
      [['env', 'create', 'x', '--ttl', '8 hours'], 2, 'expected a duration'],
      [['env', 'create', 'x', '--ttl', '31d'], 2, 'between 1m and 30d'],
      [['env', 'create', 'x', '--services', 'payments'], 4, 'Unknown service'],
      [['env', 'create', 'x', '--from-branch', 'no-such-branch'], 4, 'no such branch'],
      [['env', 'create', 'x', '--from-branch', 'not-built'], 4, 'retailops never builds for a preview'],
      [['env', 'extend', 'x', '--ttl', '0s'], 2, 'between 1m and 30d'],
    ]
    for (const [args, exit, message] of cases) {
      const r = await cli(args)
      expect(r.exitCode, args.join(' ')).toBe(exit)
      expect(r.doc.error.message).toContain(message)
    }
    // signing.required: the fake digests cannot verify, so nothing is written.
    const strict = await cli(['env', 'create', 'x', '--config', path.join(project.dir, 'strict.yaml')])
    expect([9, 10]).toContain(strict.exitCode)
    expect(await previewNamespaces()).toEqual([])
  })

  let prodBefore: string

  it('creates two previews beside production: own namespace, applyset, quota, isolation, Pod Security, owner and expiry', async () => {
    prodBefore = await contents(PROD)
    const started = Date.now()
    const a = await cli(['env', 'create', 'a', '--ttl', '2h'])
    expect(a.exitCode, a.stderr).toBe(0)
    const b = await cli(['env', 'create', 'b', '--from-branch', 'feature-cart', '--ttl', '1h'], {
      RETAILOPS_OWNER: 'bob',
    })
    expect(b.exitCode, b.stderr).toBe(0)
    expect(a.doc.result.reach).toContainEqual(
      expect.objectContaining({
        service: 'catalog',
        portForward: `kubectl -n ${ns('a')} port-forward service/catalog 8080:8080`,
      }),
    )

    const nsA = (await get<Obj>(`/api/v1/namespaces/${ns('a')}`))!
    expect(nsA.metadata.labels).toMatchObject({
      'retailops.dev/preview': 'a',
      'retailops.dev/preview-of': PROJECT,
      'pod-security.kubernetes.io/enforce': 'restricted',
      'retailops.dev/environment': 'preview-a',
      'retailops.dev/applyset': applySetId(PROJECT, 'preview-a', ns('a'), 'main'),
    })
    expect(nsA.metadata.annotations).toMatchObject({
      'retailops.dev/preview-owner': 'alice',
      'retailops.dev/preview-ttl': '2h',
      'retailops.dev/preview-source': 'artifacts lock',
    })
    const expires = Date.parse(nsA.metadata.annotations!['retailops.dev/preview-expires'])
    expect(expires).toBeGreaterThanOrEqual(started + 2 * 3_600_000 - 1000)
    expect(expires).toBeLessThanOrEqual(Date.now() + 2 * 3_600_000)

    for (const name of ['a', 'b']) {
      const n = ns(name)
      const quota = (await get<Obj>(`/api/v1/namespaces/${n}/resourcequotas/preview-quota`))!
      expect(quota.spec.hard).toMatchObject({pods: expect.any(String), 'requests.cpu': expect.any(String)})
      const policies = await http.request<{items: Obj[]}>(
        'GET',
        `/apis/networking.k8s.io/v1/namespaces/${n}/networkpolicies`,
      )
      const byName = new Map(policies.items.map((p) => [p.metadata.name, p]))
      expect(byName.get('default-deny')!.spec).toMatchObject({podSelector: {}, policyTypes: ['Ingress', 'Egress']})
      expect(byName.get('allow-within-preview')!.spec).toMatchObject({
        ingress: [{from: [{podSelector: {}}]}],
        egress: [{to: [{podSelector: {}}]}],
      })
      // Its own, empty Secret and ConfigMap: nothing copied from production.
      const secret = (await get<Obj>(`/api/v1/namespaces/${n}/secrets/catalog-api-key`))!
      expect(secret.data ?? {}).toEqual({})
      expect(secret.metadata.labels?.['retailops.dev/preview']).toBe(name)
      expect(await get(`/api/v1/namespaces/${n}/configmaps/catalog-settings`)).toBeDefined()
      // Every rendered object carries the preview's own applyset, never production's.
      const deployments = await http.request<{items: Obj[]}>('GET', `/apis/apps/v1/namespaces/${n}/deployments`)
      expect(deployments.items.map((d) => d.metadata.name).sort()).toEqual(['cart', 'catalog'])
      for (const d of deployments.items)
        expect(d.metadata.labels?.['retailops.dev/applyset']).toBe(applySetId(PROJECT, `preview-${name}`, n, 'main'))
      const routes = await http.request<{items: Obj[]}>(
        'GET',
        `/apis/gateway.networking.k8s.io/v1/namespaces/${n}/httproutes`,
      )
      expect(routes.items).toEqual([])
    }
    // a runs the lock's images, b the images its branch's lock records.
    const img = async (n: string, d: string) =>
      (await get<Obj>(`/apis/apps/v1/namespaces/${n}/deployments/${d}`))!.spec.template.spec.containers[0].image
    expect(await img(ns('a'), 'cart')).toBe(image('cart', 'a'))
    expect(await img(ns('b'), 'cart')).toBe(image('cart', 'b'))
    expect(await img(ns('b'), 'catalog')).toBe(image('catalog', 'a'))
    expect((await get<Obj>(`/api/v1/namespaces/${ns('b')}`))!.metadata.annotations).toMatchObject({
      'retailops.dev/preview-owner': 'bob',
      'retailops.dev/preview-source': expect.stringMatching(/^branch feature-cart \([0-9a-f]{12}\)$/),
    })
    // Production is as it was.
    expect(await contents(PROD)).toBe(prodBefore)

    const again = await cli(['env', 'create', 'a'])
    expect(again.exitCode).toBe(35)
    expect(again.doc.error.message).toContain('already exists')
  })

  it('a production deploy (its prune) leaves the previews byte-for-byte unchanged', async () => {
    const a = await contents(ns('a'))
    const b = await contents(ns('b'))
    const deployed = await cli(['deploy', '--skip-verify', '--timeout', '4m'])
    expect(deployed.exitCode, deployed.stderr).toBe(0)
    expect(await contents(ns('a'))).toBe(a)
    expect(await contents(ns('b'))).toBe(b)
  })

  it('lists each with owner, age, TTL left and cost so far; extend moves only the expiry', async () => {
    const c = await cli(['env', 'create', 'c', '--ttl', '1m', '--services', 'catalog'])
    expect(c.exitCode, c.stderr).toBe(0)
    const listed = await cli(['env', 'list'])
    expect(listed.exitCode, listed.stderr).toBe(0)
    const previews = listed.doc.result.previews as {
      name: string
      owner: string
      ttlLeftMs: number
      ageMs: number
      costSoFar: number
    }[]
    expect(previews.map((p) => p.name).sort()).toEqual(['a', 'b', 'c'])
    const a = previews.find((p) => p.name === 'a')!
    expect(a.owner).toBe('alice')
    expect(a.ttlLeftMs).toBeGreaterThan(3_600_000)
    expect(a.ttlLeftMs).toBeLessThanOrEqual(2 * 3_600_000)
    expect(a.ageMs).toBeGreaterThan(0)
    expect(a.costSoFar).toBeGreaterThan(0)

    const before = await contents(ns('b'))
    const extended = await cli(['env', 'extend', 'b', '--ttl', '3h'])
    expect(extended.exitCode, extended.stderr).toBe(0)
    const after = (await get<Obj>(`/api/v1/namespaces/${ns('b')}`))!.metadata.annotations!
    expect(Date.parse(after['retailops.dev/preview-expires'])).toBeGreaterThan(Date.now() + 2.9 * 3_600_000)
    expect(after['retailops.dev/preview-ttl']).toBe('3h')
    // Only the two annotations changed.
    const strip = (s: string) => s.replace(/"retailops.dev\/preview-(expires|ttl)":"[^"]*"/g, '')
    expect(strip(await contents(ns('b')))).toBe(strip(before))
    const missing = await cli(['env', 'extend', 'zz', '--ttl', '1h'])
    expect(missing.exitCode).toBe(4)
  })

  it('a preview that cannot be applied whole is deleted, not left half-made; production and the other previews are unchanged', async () => {
    // A real admission policy refuses the cart Deployment of preview "broken" after its namespace,
    // Secrets and other objects were written: the apply fails part-way, as a quota or webhook would.
    const policy = randomName('t-env-refuse')
    const rule = `object.metadata.namespace != '${ns('broken')}' || object.metadata.name != 'cart'`
    await http.request('POST', '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies', {
      body: {
        metadata: {name: policy},
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: {
            resourceRules: [
              {apiGroups: ['apps'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['deployments']},
            ],
          },
          validations: [{expression: rule, message: 'the test refuses this Deployment'}],
        },
      },
    })
    await http.request('POST', '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings', {
      body: {metadata: {name: policy}, spec: {policyName: policy, validationActions: ['Deny']}},
    })
    try {
      // Policies take effect asynchronously: wait until a dry-run in the preview's namespace is refused.
      await http.request('POST', '/api/v1/namespaces', {body: {metadata: {name: ns('broken')}}})
      const probe = {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: {name: 'cart', namespace: ns('broken')},
        spec: {
          selector: {matchLabels: {app: 'probe'}},
          template: {metadata: {labels: {app: 'probe'}}, spec: {containers: [{name: 'c', image: 'probe'}]}},
        },
      }
      await eventually(
        'the admission policy to refuse the probe',
        async () =>
          http
            .request('POST', `/apis/apps/v1/namespaces/${ns('broken')}/deployments`, {
              body: probe,
              query: {dryRun: 'All'},
            })
            .then(
              () => undefined,
              (e: unknown) => (String(e).includes('the test refuses') ? true : undefined),
            ),
        30_000,
        250,
      )
      await http.request('DELETE', `/api/v1/namespaces/${ns('broken')}`)
      await eventually(
        'the probe namespace to go',
        async () => ((await get(`/api/v1/namespaces/${ns('broken')}`)) ? undefined : true),
        60_000,
        500,
      )

      const before = {prod: await contents(PROD), b: await contents(ns('b'))}
      const r = await cli(['env', 'create', 'broken', '--ttl', '1h'])
      expect(r.exitCode, r.stderr).toBe(11)
      expect(r.doc.result).toMatchObject({outcome: 'DEPLOY_FAILED', removed: true})
      expect(r.doc.result.apply.failed.map((f: {ref: string}) => f.ref)).toEqual([
        expect.stringMatching(/Deployment.*cart/),
      ])
      // Read back: the namespace is deleted (gone, or going with everything in it), not kept half-made.
      const left = await get<Obj>(`/api/v1/namespaces/${ns('broken')}`)
      expect(left === undefined || left.metadata.deletionTimestamp !== undefined).toBe(true)
      await eventually(
        'the half-made preview to go',
        async () => ((await get(`/api/v1/namespaces/${ns('broken')}`)) ? undefined : true),
        120_000,
        1000,
      )
      expect((await previewNamespaces()).map((n) => n.metadata.name)).not.toContain(ns('broken'))
      expect(await contents(PROD)).toBe(before.prod)
      expect(await contents(ns('b'))).toBe(before.b)
    } finally {
      await http
        .request('DELETE', `/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/${policy}`)
        .catch(() => undefined)
      await http
        .request('DELETE', `/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/${policy}`)
        .catch(() => undefined)
    }
  })

  it('destroying a preview deletes its namespace and leaves the other preview and production byte-for-byte unchanged', async () => {
    const bBefore = await contents(ns('b'))
    const prod = await contents(PROD)
    const r = await cli(['env', 'destroy', 'a'])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.doc.result.gone).toBe(true)
    expect(await get(`/api/v1/namespaces/${ns('a')}`)).toBeUndefined()
    expect(await contents(ns('b'))).toBe(bBefore)
    expect(await contents(PROD)).toBe(prod)
    // A namespace with a preview's name that is not labelled as this project's preview is never deleted.
    await http.request('POST', '/api/v1/namespaces', {body: {metadata: {name: ns('imposter')}}})
    const notPreview = await cli(['env', 'destroy', 'imposter'])
    expect(notPreview.exitCode).toBe(4)
    expect(notPreview.doc.error.message).toContain('is not preview imposter')
    expect(await get(`/api/v1/namespaces/${ns('imposter')}`)).toBeDefined()
    const taken = await cli(['env', 'create', 'imposter'])
    expect(taken.exitCode).toBe(35)
  })

  it('sweep deletes only the expired preview', async () => {
    await eventually(
      'preview c to expire',
      async () => {
        const c = (await previewNamespaces()).find((n) => n.metadata.name === ns('c'))!
        return Date.parse(c.metadata.annotations!['retailops.dev/preview-expires']) < Date.now() ? true : undefined
      },
      90_000,
      1000,
    )
    const bBefore = await contents(ns('b'))
    const prod = await contents(PROD)
    const dry = await cli(['env', 'sweep', '--dry-run'])
    expect(dry.doc.result.deleted.map((p: {name: string}) => p.name)).toEqual(['c'])
    expect(await get(`/api/v1/namespaces/${ns('c')}`)).toBeDefined()
    const swept = await cli(['env', 'sweep'])
    expect(swept.exitCode, swept.stderr).toBe(0)
    expect(swept.doc.result.deleted.map((p: {name: string}) => p.name)).toEqual(['c'])
    expect(swept.doc.result.kept.map((p: {name: string}) => p.name)).toEqual(['b'])
    await eventually(
      'namespace c to go',
      async () => ((await get(`/api/v1/namespaces/${ns('c')}`)) ? undefined : true),
      120_000,
      1000,
    )
    expect(await contents(ns('b'))).toBe(bBefore)
    expect(await contents(PROD)).toBe(prod)
  })
})
