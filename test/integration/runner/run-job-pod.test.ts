// The pod runner (test/integration/helpers/run-job-pod.ts) is what proves the Jobs retailops
// creates: here it proves itself. A Job is created in a Pod Security `restricted` namespace and its
// pod template, read back, runs in the real runner image; the process reports what it was given
// (identity, groups, capabilities, files and their modes, environment, arguments), and talks to the
// API server with nothing but the in-cluster files, as its ServiceAccount, leaving a ConfigMap the
// test reads back from the cluster.
import {randomBytes} from 'node:crypto'

import * as k8s from '@kubernetes/client-node'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {jobPodTemplate, runPodTemplate} from '../helpers/run-job-pod.js'
import {sandboxRunnerImage} from '../helpers/runner-image.js'
import {kubeConfig, sandboxEnv} from '../../support/sandbox.js'

const NS = `t-podrun-${randomBytes(3).toString('hex')}`

// Runs inside the container: reports, then writes a ConfigMap with the in-cluster credentials only.
const PROBE = String.raw`
const fs = require('node:fs'), https = require('node:https')
const sa = '/var/run/secrets/kubernetes.io/serviceaccount'
const mode = (p) => { const s = fs.statSync(p); return {mode: (s.mode & 0o7777).toString(8), gid: s.gid} }
const writable = (p) => { try { fs.writeFileSync(p, 'x'); return true } catch { return false } }
const status = Object.fromEntries(fs.readFileSync('/proc/self/status', 'utf8').split('\n').filter((l) => /^(CapEff|NoNewPrivs):/.test(l)).map((l) => l.split(/:\s+/)))
const call = (method, path, body) => new Promise((resolve, reject) => {
  const req = https.request({host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT, path, method, ca: fs.readFileSync(sa + '/ca.crt'),
    headers: {authorization: 'Bearer ' + fs.readFileSync(sa + '/token', 'utf8'), 'content-type': 'application/json'}}, (res) => {
    let data = ''; res.on('data', (c) => (data += c)); res.on('end', () => resolve({status: res.statusCode, body: data ? JSON.parse(data) : undefined}))
  })
  req.on('error', reject); req.end(body ? JSON.stringify(body) : undefined)
})
;(async () => {
  const ns = fs.readFileSync(sa + '/namespace', 'utf8')
  const who = await call('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview'})
  const secrets = await call('GET', '/api/v1/namespaces/' + ns + '/secrets')
  const made = await call('POST', '/api/v1/namespaces/' + ns + '/configmaps', {metadata: {name: 'made-by-pod'}, data: {greeting: process.env.COMBINED, secret: process.env.SECRET}})
  console.log(JSON.stringify({
    uid: process.getuid(), gid: process.getgid(), groups: process.getgroups().sort((a, b) => a - b), argv: process.argv.slice(1), cwd: process.cwd(),
    env: {GREETING: process.env.GREETING, NS: process.env.NS, SECRET: process.env.SECRET, CONF: process.env.CONF, COMBINED: process.env.COMBINED, HOME: process.env.HOME, KUBECONFIG: process.env.KUBECONFIG ?? null},
    status, rootWritable: writable('/opt/x'), tmpWritable: writable('/scratch/x'),
    files: {config: fs.readdirSync('/etc/probe/config', {recursive: true}).sort(), alpha: fs.readFileSync('/etc/probe/config/sub/alpha.txt', 'utf8'), alphaMode: mode('/etc/probe/config/sub/alpha.txt'),
      secretMode: mode('/etc/probe/secret/token'), secret: fs.readFileSync('/etc/probe/secret/token', 'utf8'), onlyB: fs.readFileSync('/etc/probe/b', 'utf8'), configWritable: writable('/etc/probe/config/y')},
    who: who.body?.status?.userInfo?.username, secretsStatus: secrets.status, madeStatus: made.status,
  }))
})().catch((e) => { console.error(e); process.exit(3) })
`

describe("runPodTemplate: a Job's pod as the kubelet would run it, in the runner image", () => {
  const kc = kubeConfig()
  const core = kc.makeApiClient(k8s.CoreV1Api)
  const batch = kc.makeApiClient(k8s.BatchV1Api)
  const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api)
  let image: string

  const podSpec = (overrides: Partial<k8s.V1Container> = {}, pod: Partial<k8s.V1PodSpec> = {}): k8s.V1PodSpec => ({
    serviceAccountName: 'probe',
    restartPolicy: 'Never',
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 10_001,
      runAsGroup: 10_002,
      fsGroup: 10_003,
      seccompProfile: {type: 'RuntimeDefault'},
    },
    containers: [
      {
        name: 'probe',
        image,
        command: ['node', '-e', PROBE],
        args: ['$(GREETING)-x', '$$(GREETING)', '$(UNDEFINED)'],
        workingDir: '/scratch',
        env: [
          {name: 'GREETING', value: 'hi'},
          {name: 'NS', valueFrom: {fieldRef: {fieldPath: 'metadata.namespace'}}},
          {name: 'SECRET', valueFrom: {secretKeyRef: {name: 'probe-secret', key: 'token'}}},
          {name: 'CONF', valueFrom: {configMapKeyRef: {name: 'probe-config', key: 'b'}}},
          {name: 'COMBINED', value: '$(GREETING)/$(NS)'},
        ],
        volumeMounts: [
          {name: 'config', mountPath: '/etc/probe/config'},
          {name: 'secret', mountPath: '/etc/probe/secret', readOnly: true},
          {name: 'whole', mountPath: '/etc/probe/b', subPath: 'b'},
          {name: 'scratch', mountPath: '/scratch'},
        ],
        resources: {limits: {cpu: '1', memory: '256Mi'}, requests: {cpu: '50m', memory: '64Mi'}},
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: ['ALL']}},
        ...overrides,
      },
    ],
    volumes: [
      {name: 'config', configMap: {name: 'probe-config', items: [{key: 'a', path: 'sub/alpha.txt', mode: 0o400}]}},
      {name: 'secret', secret: {secretName: 'probe-secret', defaultMode: 0o440}},
      {name: 'whole', configMap: {name: 'probe-config'}},
      {name: 'scratch', emptyDir: {sizeLimit: '16Mi'}},
    ],
    ...pod,
  })

  beforeAll(async () => {
    image = (await sandboxRunnerImage()).image
    await core.createNamespace({
      body: {
        metadata: {
          name: NS,
          labels: {'retailops.dev/test': 'podrun', 'pod-security.kubernetes.io/enforce': 'restricted'},
        },
      },
    })
    await core.createNamespacedServiceAccount({namespace: NS, body: {metadata: {name: 'probe'}}})
    await rbac.createNamespacedRole({
      namespace: NS,
      body: {metadata: {name: 'probe'}, rules: [{apiGroups: [''], resources: ['configmaps'], verbs: ['create']}]},
    })
    await rbac.createNamespacedRoleBinding({
      namespace: NS,
      body: {
        metadata: {name: 'probe'},
        roleRef: {apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'probe'},
        subjects: [{kind: 'ServiceAccount', name: 'probe', namespace: NS}],
      },
    })
    await core.createNamespacedConfigMap({
      namespace: NS,
      body: {metadata: {name: 'probe-config'}, data: {a: 'alpha', b: 'beta'}},
    })
    await core.createNamespacedSecret({
      namespace: NS,
      body: {metadata: {name: 'probe-secret'}, stringData: {token: 's3cret', other: 'x'}},
    })
    // A real Job (admitted by Pod Security restricted); kwok never starts it, the runner does.
    await batch.createNamespacedJob({
      namespace: NS,
      body: {metadata: {name: 'probe'}, spec: {backoffLimit: 0, template: {spec: podSpec()}}},
    })
  }, 600_000)

  afterAll(async () => {
    await core.deleteNamespace({name: NS}).catch(() => {})
  })

  it('runs the read-back Job with its identity, mounts, environment and arguments, as its ServiceAccount', async () => {
    const spec = await jobPodTemplate(NS, 'Job', 'probe')
    const run = await runPodTemplate({namespace: NS, template: spec})
    expect(run.exitCode, run.stdout + run.stderr).toBe(0)
    const report = JSON.parse(run.stdout.trim().split('\n').at(-1)!)
    expect(report).toMatchObject({
      uid: 10_001,
      gid: 10_002,
      // $(VAR) expanded, $$ escaped, an unknown reference kept as written.
      argv: ['hi-x', '$(GREETING)', '$(UNDEFINED)'],
      cwd: '/scratch',
      env: {GREETING: 'hi', NS, SECRET: 's3cret', CONF: 'beta', COMBINED: `hi/${NS}`, HOME: '/tmp', KUBECONFIG: null},
      status: {CapEff: '0000000000000000', NoNewPrivs: '1'},
      rootWritable: false,
      tmpWritable: true,
      files: {
        config: ['sub', 'sub/alpha.txt'],
        alpha: 'alpha',
        // mode 0400 from the item, made group-readable for fsGroup as the kubelet does.
        alphaMode: {mode: '440', gid: 10_003},
        secretMode: {mode: '440', gid: 10_003},
        secret: 's3cret',
        onlyB: 'beta',
        configWritable: false,
      },
      who: `system:serviceaccount:${NS}:probe`,
      secretsStatus: 403,
      madeStatus: 201,
    })
    // fsGroup is a supplementary group, as the kubelet adds it.
    expect(report.groups).toContain(10_003)
    // What the pod did is in the cluster.
    const made = await core.readNamespacedConfigMap({name: 'made-by-pod', namespace: NS})
    expect(made.data).toEqual({greeting: `hi/${NS}`, secret: 's3cret'})
    // The container is gone.
    expect(run.container).toContain(NS)
  })

  it('fails as the kubelet would: a missing Secret, a root user under runAsNonRoot, an image the registry does not have', async () => {
    const missingSecret = podSpec()
    missingSecret.volumes = missingSecret.volumes!.map((v) =>
      v.name === 'secret' ? {name: 'secret', secret: {secretName: 'nope'}} : v,
    )
    await expect(runPodTemplate({namespace: NS, template: missingSecret})).rejects.toThrow(
      `Secret ${NS}/nope does not exist`,
    )
    await expect(runPodTemplate({namespace: NS, template: podSpec({securityContext: {runAsUser: 0}})})).rejects.toThrow(
      'runAsNonRoot and runAsUser 0',
    )
    const absent = `${sandboxEnv().registry}/t-podrun/none@sha256:${'0'.repeat(64)}`
    await expect(runPodTemplate({namespace: NS, template: podSpec({image: absent})})).rejects.toThrow(
      /Cannot pull .*sandboxRunnerImage/s,
    )
  })
})
