// Prometheus behind a path prefix (https://host/prometheus, issue 12 item 10): a reverse proxy on
// 127.0.0.1 serves the sandbox's real Prometheus under /prometheus/ only (everything else 404, as
// a shared ingress would). Canary analysis and prewarm (prometheusProvider), slo and cost
// (PrometheusClient) and doctor must all keep the prefix.
import {mkdtemp, readFile, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {prometheusProvider} from '../../src/rollout/analysis.js'
import {PrometheusClient} from '../../src/prometheus/client.js'
import {type PrefixProxy, startPrefixProxy} from './helpers/prefix-proxy.js'
import {sandboxEnv} from '../support/sandbox.js'
import {runCli} from '../support/cli.js'

describe('Prometheus behind a path prefix', () => {
  let proxy: PrefixProxy
  let base: string
  const seen: string[] = []

  beforeAll(async () => {
    const upstream = sandboxEnv().prometheusUrl
    proxy = await startPrefixProxy(upstream, '/prometheus', (req) => seen.push(req.url))
    base = proxy.base
  })
  afterAll(() => proxy.close())

  it('canary analysis and prewarm queries keep the prefix', async () => {
    expect(await prometheusProvider(base).query('vector(42)')).toBe(42)
    expect(await prometheusProvider(`${base}/`).query('vector(7)')).toBe(7)
    expect(seen.at(-1)).toBe('/prometheus/api/v1/query')
  })

  it('slo and cost queries keep the prefix', async () => {
    const client = new PrometheusClient(base, {infinity: 'no-data'})
    const samples = await client.query('vector(3)')
    expect(samples.map((s) => s.value)).toEqual([3])
    expect(seen.at(-1)).toBe('/prometheus/api/v1/query')
  })

  it('doctor checks Prometheus under the prefix', async () => {
    const project = await mkdtemp(path.join(os.tmpdir(), 'ro-prefix-'))
    const init = await runCli(
      [
        'init',
        '--directory',
        project,
        '--project',
        'pfx',
        '--target-namespace',
        't-prefix',
        '--kube-context',
        sandboxEnv().context,
        '--yes',
        '--json',
      ],
      {built: true},
    )
    expect(init.exitCode, init.stderr).toBe(0)
    const file = path.join(project, 'retailops.yaml')
    const yaml = await readFile(file, 'utf8')
    expect(yaml).toContain(sandboxEnv().prometheusUrl)
    await writeFile(file, yaml.replaceAll(sandboxEnv().prometheusUrl, base))
    const r = await runCli(['doctor', '--json'], {cwd: project, built: true})
    const checks = Object.fromEntries(
      (JSON.parse(r.stdout).result.checks as {id: string; status: string; detail: string}[]).map((c) => [c.id, c]),
    )
    expect(checks.prometheus.status, checks.prometheus.detail).toBe('ok')
    expect(checks.prometheus.detail).toContain(`${base}: Prometheus`)
    expect(seen).toContain('/prometheus/-/ready')
    expect(seen).toContain('/prometheus/api/v1/status/buildinfo')
  })
})
