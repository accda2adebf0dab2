import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {runCli} from '../../support/cli.js'
import {sandboxEnv} from '../../support/sandbox.js'

const ROOT = path.resolve(import.meta.dirname, '../../..')
const DIGEST = `sha256:${'a'.repeat(64)}`
const SERVICES = ['catalog', 'cart', 'inventory', 'payments', 'orders', 'checkout']

interface KubeScoreCheck {
  check: {id: string; name: string}
  grade: number
  skipped: boolean
  comments: {path: string; summary: string; description: string}[] | null
}

interface Finding {
  object: string
  check: string
  grade: 'CRITICAL' | 'WARNING'
  summary: string
}

/**
 * The check IDs docs/deploy.md justifies (the table under "kube-score"): the only findings the
 * render may have. Read from the docs so a new finding needs a written reason before it passes.
 */
async function justifiedChecks(): Promise<Map<string, string>> {
  const text = await readFile(path.join(ROOT, 'docs/deploy.md'), 'utf8')
  const section = text.split(/^## /m).find((s) => s.startsWith('kube-score'))
  if (!section) throw new Error('docs/deploy.md has no "## kube-score" section')
  const rows = [...section.matchAll(/^\| `([a-z0-9-]+)` \| (CRITICAL|WARNING) \|/gm)]
  return new Map(rows.map((m) => [m[1], m[2]]))
}

/**
 * The real kube-score (built from its Go module by scripts/build-binaries.sh) on what `retailops
 * render` prints for a freshly scaffolded project.
 */
describe("kube-score on the scaffolded project's render", () => {
  let dir: string
  let manifests: string
  const kubeScore = sandboxEnv().kubeScore

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 't-kube-score-'))
    const init = await runCli(['init', '--directory', path.join(dir, 'shop'), '--project', 'shop', '--yes', '--json'])
    expect(init.exitCode, init.stderr).toBe(0)
    const render = await runCli(
      ['render', ...SERVICES.flatMap((s) => ['--image', `${s}=127.0.0.1:5000/shop/${s}@${DIGEST}`])],
      {cwd: path.join(dir, 'shop'), env: {NO_COLOR: '1'}},
    )
    expect(render.exitCode, render.stderr).toBe(0)
    manifests = path.join(dir, 'render.yaml')
    await writeFile(manifests, render.stdout)
  }, 120_000)
  afterAll(async () => {
    if (dir) await rm(dir, {recursive: true, force: true})
  })

  const score = async (file: string) => {
    const r = await execa(kubeScore, ['score', file, '--output-format', 'json'], {reject: false})
    if (r.exitCode !== 0 && !r.stdout.startsWith('[')) throw new Error(`kube-score failed (${r.exitCode}): ${r.stderr}`)
    const objects = JSON.parse(r.stdout) as {
      object_name: string
      type_meta: {kind: string}
      object_meta: {namespace?: string}
      checks: KubeScoreCheck[]
    }[]
    const findings: Finding[] = []
    for (const o of objects) {
      for (const c of o.checks) {
        // kube-score grades: 1 critical, 5 warning, 7 almost OK, 10 OK.
        if (c.skipped || c.grade >= 7) continue
        for (const comment of c.comments ?? [{path: '', summary: c.check.name, description: ''}]) {
          findings.push({
            object: `${o.type_meta.kind} ${o.object_meta.namespace ?? ''}/${o.object_name}`,
            check: c.check.id,
            grade: c.grade <= 1 ? 'CRITICAL' : 'WARNING',
            summary: comment.summary,
          })
        }
      }
    }
    return {exitCode: r.exitCode, objects: objects.length, findings}
  }

  it('finds nothing but what docs/deploy.md justifies', async () => {
    const justified = await justifiedChecks()
    expect(justified.size).toBeGreaterThan(0)
    const {objects, findings} = await score(manifests)
    expect(objects).toBeGreaterThanOrEqual(SERVICES.length * 5)
    const unjustified = findings.filter((f) => justified.get(f.check) !== f.grade)
    expect(unjustified, unjustified.map((f) => `${f.grade} ${f.object}: ${f.check}: ${f.summary}`).join('\n')).toEqual(
      [],
    )
    // The two fixed here: no ephemeral-storage finding, no replicas beside an HPA.
    expect(findings.filter((f) => /ephemeral-storage|hpa/.test(f.check))).toEqual([])
    // The gateway's pods are the only ones outside the render (docs/deploy.md says why).
    expect(
      findings.filter((f) => f.check === 'networkpolicy-targets-pod' && !f.object.endsWith('/allow-gateway')),
    ).toEqual([])
    // Every justified check still occurs, so the docs describe the render as it is.
    expect([...justified.keys()].filter((id) => !findings.some((f) => f.check === id))).toEqual([])
  })

  it('would catch what it is there to catch: the same render with replicas and without ephemeral storage', async () => {
    const text = await readFile(manifests, 'utf8')
    // One finding per request and per limit removed: the services' containers and the scaffolded reconcile job's.
    const ephemeralLines = text.match(/^ +ephemeral-storage: .*$/gm)!.length
    expect(ephemeralLines).toBe((SERVICES.length + 1) * 2)
    const broken = text
      .replace(/^ +ephemeral-storage: .*\n/gm, '')
      .replace(/^(kind: Deployment\n(?:.*\n)*?spec:\n)/gm, '$1  replicas: 3\n')
    const file = path.join(dir, 'broken.yaml')
    await writeFile(file, broken)
    const {exitCode, findings} = await score(file)
    expect(exitCode).not.toBe(0)
    const critical = (id: string) => findings.filter((f) => f.check === id && f.grade === 'CRITICAL').length
    expect(critical('container-ephemeral-storage-request-and-limit')).toBe(ephemeralLines)
    expect(critical('deployment-targeted-by-hpa-does-not-have-replicas-configured')).toBe(SERVICES.length)
  })
})
