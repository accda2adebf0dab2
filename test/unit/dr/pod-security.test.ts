import {describe, expect, it} from 'vitest'

import {checkRestricted} from '../../../src/dr/pod-security.js'
import {placeholderSecret, planRestore} from '../../../src/dr/providers/kubernetes.js'

const deployment = (name: string, spec: object, annotations?: Record<string, string>) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: {name, namespace: 'shop', labels: {'app.kubernetes.io/managed-by': 'retailops'}},
  spec: {
    replicas: 1,
    selector: {matchLabels: {app: name}},
    template: {metadata: {labels: {app: name}, ...(annotations ? {annotations} : {})}, spec},
  },
})

describe('Pod Security restricted', () => {
  it('fills in what a template leaves unset, and says what', () => {
    const r = checkRestricted({
      spec: {
        containers: [{name: 'app'}],
        initContainers: [{name: 'migrate', securityContext: {capabilities: {drop: ['NET_RAW']}}}],
      },
    })
    expect(r.violations).toEqual([])
    expect(r.spec).toEqual({
      securityContext: {runAsNonRoot: true, seccompProfile: {type: 'RuntimeDefault'}},
      initContainers: [
        {name: 'migrate', securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: ['NET_RAW', 'ALL']}}},
      ],
      containers: [{name: 'app', securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: ['ALL']}}}],
    })
    expect(r.fixes).toEqual([
      'runAsNonRoot: true',
      'seccompProfile: RuntimeDefault',
      'allowPrivilegeEscalation: false (migrate, app)',
      'capabilities drop ALL (migrate, app)',
    ])
  })
  it('leaves a template that already passes as it is', () => {
    const spec = {
      securityContext: {runAsNonRoot: true, seccompProfile: {type: 'Localhost'}},
      containers: [
        {
          name: 'app',
          securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: ['ALL'], add: ['NET_BIND_SERVICE']}},
        },
      ],
    }
    expect(checkRestricted({spec})).toEqual({violations: [], fixes: [], spec})
  })
  it('names every explicit violation, and changes none of them', () => {
    const r = checkRestricted(
      deployment(
        'x',
        {
          hostNetwork: true,
          hostPID: true,
          securityContext: {runAsUser: 0, sysctls: [{name: 'kernel.msgmax'}, {name: 'net.ipv4.tcp_syncookies'}]},
          volumes: [
            {name: 'docker', hostPath: {path: '/var/run/docker.sock'}},
            {name: 'cfg', configMap: {name: 'c'}},
          ],
          containers: [
            {
              name: 'app',
              ports: [{containerPort: 80, hostPort: 80}],
              securityContext: {
                privileged: true,
                allowPrivilegeEscalation: true,
                capabilities: {add: ['SYS_ADMIN', 'NET_BIND_SERVICE']},
                seccompProfile: {type: 'Unconfined'},
                runAsNonRoot: false,
                procMount: 'Unmasked',
              },
            },
          ],
        },
        {'container.apparmor.security.beta.kubernetes.io/app': 'unconfined'},
      ).spec.template,
    )
    expect(r.violations).toEqual([
      'hostNetwork: true',
      'hostPID: true',
      'volume docker is hostPath',
      'AppArmor unconfined for app',
      'sysctl kernel.msgmax',
      'pod: runAsUser: 0',
      'container app: runAsNonRoot: false',
      'container app: seccompProfile Unconfined',
      'container app: privileged: true',
      'container app: allowPrivilegeEscalation: true',
      'container app: procMount Unmasked',
      'container app: adds capabilities SYS_ADMIN',
      'container app: hostPort 80',
    ])
  })
})

describe('what a kubernetes drill restores', () => {
  const snapshot = [
    {apiVersion: 'v1', kind: 'ServiceAccount', metadata: {name: 'orders', namespace: 'shop'}},
    {apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'cfg', namespace: 'shop'}, data: {A: '1'}},
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'db',
        namespace: 'shop',
        annotations: {'kubectl.kubernetes.io/last-applied-configuration': '{"data":{"password":"c2VjcmV0"}}'},
      },
      type: 'Opaque',
      data: {password: 'c2VjcmV0', user: 'YXBw'},
    },
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {name: 'pull', namespace: 'shop'},
      type: 'kubernetes.io/dockerconfigjson',
      data: {'.dockerconfigjson': 'e30='},
    },
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {name: 'tok', namespace: 'shop'},
      type: 'kubernetes.io/service-account-token',
      data: {token: 'dA=='},
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: {name: 'to-payments', namespace: 'shop'},
      spec: {podSelector: {}, egress: [{to: [{namespaceSelector: {}}]}]},
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {name: 'orders', namespace: 'shop'},
      spec: {type: 'ClusterIP', ports: [{port: 80}]},
    },
    deployment('orders', {containers: [{name: 'app', image: 'x'}]}),
    deployment('agent', {hostNetwork: true, containers: [{name: 'a', image: 'x'}]}),
  ]
  const {objects, inventory} = planRestore(snapshot, 'retailops-drill-x', 'id', 'ds')

  it('reports every object: restored, modified, placeholder or not restored, with the reason', () => {
    expect(inventory.map((i) => [i.kind, i.name, i.outcome])).toEqual([
      ['ServiceAccount', 'orders', 'modified'],
      ['ConfigMap', 'cfg', 'restored'],
      ['Secret', 'db', 'placeholder'],
      ['Secret', 'pull', 'placeholder'],
      ['Secret', 'tok', 'not-restored'],
      ['NetworkPolicy', 'to-payments', 'not-restored'],
      ['Service', 'orders', 'restored'],
      ['Deployment', 'orders', 'modified'],
      ['Deployment', 'agent', 'not-restored'],
    ])
    expect(inventory.find((i) => i.name === 'agent')!.reason).toBe(
      'violates Pod Security restricted, which the drill namespace enforces: hostNetwork: true',
    )
    expect(inventory.find((i) => i.kind === 'Deployment' && i.name === 'orders')!.reason).toMatch(
      /^set runAsNonRoot: true; set seccompProfile: RuntimeDefault; .*set automountServiceAccountToken: false$/,
    )
    expect(inventory.find((i) => i.name === 'pull')!.reason).toMatch(
      /type kubernetes\.io\/dockerconfigjson cannot be empty: Opaque instead/,
    )
  })
  it('copies no Secret value, not even through an annotation', () => {
    const secrets = objects.filter((o) => o.kind === 'Secret')
    expect(secrets.map((o) => [o.metadata.name, (o as {type?: string}).type, (o as {data?: object}).data])).toEqual([
      ['db', 'Opaque', {password: '', user: ''}],
      ['pull', 'Opaque', {'.dockerconfigjson': ''}],
    ])
    expect(JSON.stringify(objects)).not.toMatch(/c2VjcmV0|YXBw|e30=|dA==/)
    expect(
      placeholderSecret({apiVersion: 'v1', kind: 'Secret', metadata: {name: 's'}, stringData: {k: 'v'}}, 'n', 'i', 'd')
        .object,
    ).toMatchObject({data: {k: ''}})
  })
  it('gives no workload an API token and leaves the restricted-breaking one out', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).not.toContain('Deployment/agent')
    expect(objects.find((o) => o.kind === 'ServiceAccount')).toMatchObject({automountServiceAccountToken: false})
    const orders = objects.find((o) => o.kind === 'Deployment') as unknown as {spec: {template: {spec: object}}}
    expect(orders.spec.template.spec).toMatchObject({
      automountServiceAccountToken: false,
      securityContext: {runAsNonRoot: true, seccompProfile: {type: 'RuntimeDefault'}},
    })
    expect(
      objects.every(
        (o) => o.metadata.namespace === 'retailops-drill-x' && o.metadata.labels?.['retailops.dev/drill'] === 'id',
      ),
    ).toBe(true)
  })
})
