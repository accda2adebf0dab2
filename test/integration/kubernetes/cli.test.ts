import {readFileSync} from 'node:fs'
import {mkdtemp, readdir, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import * as k8s from '@kubernetes/client-node'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parseAllDocuments} from 'yaml'

import {
  baseConfig,
  CONTEXT,
  kubeProject,
  projectImages,
  projectNs,
  SECURE_SERVICE,
  type KubeProject,
} from './helpers.js'
import {runCli} from '../../support/cli.js'

/** render, diff and deploy --dry-run through the CLI, as a user or a pipeline runs them. */
describe('render, diff and deploy --dry-run (CLI)', () => {
  let t: KubeProject
  const cli = (args: string[]) =>
    runCli([...args, '--config', path.join(t.dir, 'retailops.yaml')], {
      env: {RETAILOPS_KUBE_CONTEXT: CONTEXT, NO_COLOR: '1'},
    })

  beforeAll(() => {
    t = kubeProject()
    t.config = baseConfig(
      t,
      {catalog: SECURE_SERVICE, checkout: {...SECURE_SERVICE, tier: 'revenue-critical', dependsOn: ['catalog']}},
      [{name: 'acme', model: 'dedicated-namespace', namespace: projectNs(t, 'acme')}],
    )
    t.writeConfig()
  })
  afterAll(async () => t.cleanup())

  it('render prints every object as YAML documents, and --json as result.objects', async () => {
    const yaml = await cli(['render', ...projectImages(t, ['catalog', 'checkout']).flatMap((i) => ['--image', i])])
    expect(yaml.exitCode).toBe(0)
    const docs = parseAllDocuments(yaml.stdout).map(
      (d) => d.toJS() as {kind: string; metadata: {namespace?: string; name: string}},
    )
    expect(
      docs.filter((d) => d.kind === 'Deployment').map((d) => `${d.metadata.namespace}/${d.metadata.name}`),
    ).toEqual([`${projectNs(t, 'acme')}/catalog`, `${projectNs(t, 'acme')}/checkout`])
    const json = await cli([
      'render',
      'checkout',
      '--kind',
      'Deployment',
      '--json',
      ...projectImages(t, ['checkout']).flatMap((i) => ['--image', i]),
    ])
    const doc = JSON.parse(json.stdout)
    expect(doc.status).toBe(0)
    expect(doc.result.objects.map((o: {kind: string}) => o.kind)).toEqual(['Deployment'])
    expect(doc.result.policy.ok).toBe(true)
  })

  it('render refuses unknown tenants and malformed --image before doing anything', async () => {
    expect((await cli(['render', '--tenant', 'nope', '--json'])).exitCode).toBe(4)
    const bad = await cli(['render', '--image', 'checkout', '--json'])
    expect(bad.exitCode).toBe(2)
    expect(JSON.parse(bad.stdout).error.message).toMatch(/expected SERVICE=REF/)
  })

  it('deploy --dry-run and diff show what would change; after a deploy, diff shows nothing', async () => {
    const images = projectImages(t, ['catalog', 'checkout']).flatMap((i) => ['--image', i])
    const dry = await cli(['deploy', '--dry-run', '--skip-verify', ...images])
    expect(dry.exitCode).toBe(0)
    expect(dry.stdout).toContain(`create Namespace ${projectNs(t, 'acme')}`)
    expect(dry.stdout).toMatch(/Dry run \(server-side, dryRun=All\): nothing was changed\./)
    const deploy = await cli(['deploy', '--skip-verify', '--json', ...images])
    expect(JSON.parse(deploy.stdout).result.outcome).toBe('OK')
    const diff = await cli(['diff', ...images])
    expect(diff.exitCode).toBe(0)
    expect(diff.stdout.trim().split('\n').at(-1)).toMatch(/^0 to create, 0 to update, 0 to delete, \d+ unchanged\.$/)
    const changed = await cli([
      'diff',
      'checkout',
      '--json',
      ...projectImages(t, ['checkout'], 'f').flatMap((i) => ['--image', i]),
    ])
    const doc = JSON.parse(changed.stdout)
    expect(doc.result.changed).toBe(1)
    expect(doc.result.diffs.find((d: {action: string}) => d.action === 'update').diff).toContain(
      `+          image: 127.0.0.1:5000/${t.name}/checkout@sha256:ffff`,
    )
  })

  it('KUBECONFIG holding the kubeconfig itself (a CI secret): deploy works and writes no file anywhere', async () => {
    const kubeconfig = process.env.KUBECONFIG!
    const kc = new k8s.KubeConfig()
    kc.loadFromFile(kubeconfig)
    kc.setCurrentContext(CONTEXT)
    const contents = kc.exportConfig()
    const home = await mkdtemp(path.join(os.tmpdir(), 't-kube-home-'))
    const tmp = await mkdtemp(path.join(os.tmpdir(), 't-kube-tmp-'))
    try {
      const images = projectImages(t, ['catalog'], 'c').flatMap((i) => ['--image', i])
      const run = await runCli(
        ['deploy', 'catalog', '--skip-verify', '--json', ...images, '--config', path.join(t.dir, 'retailops.yaml')],
        {
          env: {KUBECONFIG: contents, RETAILOPS_KUBE_CONTEXT: CONTEXT, HOME: home, TMPDIR: tmp, NO_COLOR: '1'},
        },
      )
      expect(run.exitCode, run.stdout).toBe(0)
      expect(run.stdout).not.toContain(readFileSync(kubeconfig, 'utf8').match(/token: (\S+)/)?.[1] ?? '\u0000never')
      const deployment = await kc
        .makeApiClient(k8s.AppsV1Api)
        .readNamespacedDeployment({name: 'catalog', namespace: projectNs(t, 'acme')})
      expect(deployment.spec?.template.spec?.containers[0].image).toBe(
        projectImages(t, ['catalog'], 'c')[0].split('=')[1],
      )
      // Nothing in HOME but the CLI's own caches: bin/run.js keeps V8's compile cache in
      // ~/.cache/retailops/compile (cli/compile-cache.test.ts) and the validated retailops.yaml in
      // ~/.cache/retailops/config (src/config/validated-cache.ts; the kubeconfig is not in it);
      // bin/dev.js keeps neither.
      const caches = ['.cache', '.cache/retailops', '.cache/retailops/compile', '.cache/retailops/config']
      const files = await readdir(home, {recursive: true})
      expect(files.filter((f) => !caches.includes(f) && !/^\.cache\/retailops\/(compile|config)\//.test(f))).toEqual([])
      for (const entry of files.filter((f) => f.startsWith('.cache/retailops/config/')))
        expect(readFileSync(path.join(home, entry), 'utf8')).not.toContain(
          readFileSync(kubeconfig, 'utf8').match(/token: (\S+)/)?.[1] ?? '\u0000never',
        )
      // bin/dev.js runs through tsx, which keeps its compile cache in TMPDIR/tsx-<uid>: that is not ours.
      expect((await readdir(tmp)).filter((f) => !f.startsWith('tsx-'))).toEqual([])
    } finally {
      await rm(home, {recursive: true, force: true})
      await rm(tmp, {recursive: true, force: true})
    }
  })
})
