// Issue 18 (fast everyday commands): what a command loads before it runs is its static import
// graph. These commands must not reach the heavy clients through it; the paths that need them load
// them with `await import()` (or kubernetesLibrary()) when they get there.
import {existsSync, readFileSync} from 'node:fs'
import path from 'node:path'

import ts from 'typescript'
import {describe, expect, it} from 'vitest'

import {ROOT} from '../../support/paths.js'

/**
 * Every module a file loads before it runs: static imports and re-exports, type-only ones left out
 * as tsc leaves them out; with `dynamic`, also what its `await import('…')`s load when they run.
 */
function staticGraph(entry: string, dynamic = false): Set<string> {
  const seen = new Set<string>()
  const visit = (file: string) => {
    if (seen.has(file)) return
    seen.add(file)
    if (!file.startsWith(ROOT)) return
    const js = ts.transpileModule(readFileSync(file, 'utf8'), {
      compilerOptions: {module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2023, verbatimModuleSyntax: false},
      fileName: file,
    }).outputText
    for (const statement of ts.createSourceFile(file, js, ts.ScriptTarget.ES2023).statements) {
      if (
        (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) &&
        statement.moduleSpecifier &&
        ts.isStringLiteral(statement.moduleSpecifier)
      )
        visit(resolve(statement.moduleSpecifier.text, file))
    }
    if (dynamic) for (const m of js.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) visit(resolve(m[1], file))
  }
  visit(path.join(ROOT, entry))
  return seen
}

function resolve(specifier: string, from: string): string {
  if (!specifier.startsWith('.')) return specifier.startsWith('node:') ? specifier : packageName(specifier)
  const js = path.resolve(path.dirname(from), specifier)
  const ts = js.replace(/\.js$/, '.ts')
  return existsSync(ts) ? ts : js
}

const packageName = (specifier: string) =>
  specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]

const relative = (graph: Set<string>) => [...graph].map((m) => (m.startsWith(ROOT) ? path.relative(ROOT, m) : m)).sort()

/** Clients no everyday command needs before it does something with them. */
const HEAVY = [
  '@kubernetes/client-node',
  'dockerode',
  'execa',
  '@aws-sdk/client-backup',
  '@aws-sdk/credential-provider-node',
  'pg',
  'tweetnacl',
  '@sigstore/bundle',
  '@sigstore/core',
  'yauzl',
  '@cyclonedx/cyclonedx-library',
]

/** The commands issue 18 times: config validate, slo rules, dr plan, render, rollout status. */
const EVERYDAY = [
  'commands/config/validate.ts',
  'commands/slo/rules.ts',
  'commands/dr/plan.ts',
  'commands/render.ts',
  'commands/rollout/status.ts',
]

describe('the static import graph of the everyday commands', () => {
  it.each(EVERYDAY)('%s reaches none of the heavy clients', (entry) => {
    const graph = relative(staticGraph(entry))
    // The walk itself works: the command reaches its base class and the configuration's loader.
    expect(graph).toContain('commands/_base/base-command.ts')
    expect(graph).toContain('src/config/load.ts')
    expect(graph.filter((m) => HEAVY.includes(m))).toEqual([])
  })

  it.each(EVERYDAY)(
    '%s loads the schema (zod) and the YAML parser with positions only when the file must be validated',
    (entry) => {
      // src/config/load.ts imports parse.ts (yaml's parseDocument, zod) when the validated-configuration
      // cache has no entry for the file; everything else imports the vocabulary, not the schema.
      const graph = relative(staticGraph(entry))
      expect(graph.filter((m) => ['zod', 'src/config/schema.ts', 'src/config/parse.ts'].includes(m))).toEqual([])
    },
  )

  it.each(['src/config/quick-parse.ts', 'src/config/validated-cache.ts', 'src/config/inline-credentials.ts'])(
    'a valid retailops.yaml that changed is parsed, validated and remembered without zod or the yaml library (%s)',
    (entry) => {
      // The quick path (js-yaml and the validator compiled from the schema) and the cache's write,
      // which asks which values are credentials: only an invalid file loads the full path.
      const graph = relative(staticGraph(entry, true))
      expect(
        graph.filter((m) =>
          ['zod', 'yaml', 'src/config/schema.ts', 'src/config/parse.ts', 'src/config/credentials.ts'].includes(m),
        ),
      ).toEqual([])
    },
  )

  it.each(EVERYDAY)('%s imports neither node:http nor node:https as an ES module', (entry) => {
    // The ES facade of node:http reads every export, which loads Node's bundled undici (~30 ms of
    // CPU); src/kubernetes/http.ts takes both with process.getBuiltinModule on its first request.
    const graph = relative(staticGraph(entry))
    expect(graph.filter((m) => m === 'node:http' || m === 'node:https')).toEqual([])
  })

  it("dr plan loads the providers' planning, not the drill engine or the libraries a drill runs on", () => {
    const graph = relative(staticGraph('commands/dr/plan.ts'))
    expect(graph).toContain('src/dr/plan-only.ts')
    expect(graph).toContain('src/dr/providers/index.ts')
    expect(
      graph.filter((m) =>
        ['src/dr/drill.ts', 'src/kubernetes/apply.ts', 'tar-stream', 'p-limit', 'p-retry'].includes(m),
      ),
    ).toEqual([])
  })

  it('config validate reaches no YAML library at all until it parses', () => {
    expect(relative(staticGraph('commands/config/validate.ts'))).not.toContain('yaml')
  })

  it('rollout status reads the kubeconfig and detached Jobs without the YAML library', () => {
    // The kubeconfig's usual subset is read by src/kubernetes/kubeconfig-yaml.ts; a job's copy of
    // retailops.yaml (src/kubernetes/runner-config.ts) is imported only by the code that writes one.
    const graph = relative(staticGraph('commands/rollout/status.ts'))
    expect(graph).toContain('src/kubernetes/kubeconfig.ts')
    expect(graph).toContain('src/kubernetes/runner-job.ts')
    expect(graph.filter((m) => m === 'yaml' || m === 'src/kubernetes/runner-config.ts')).toEqual([])
  })

  it('render needs neither the Kubernetes client nor the deploy engine, signing or the supply chain', () => {
    const graph = relative(staticGraph('commands/render.ts'))
    expect(graph).toContain('src/deploy/plan.ts')
    expect(
      graph.filter(
        (m) =>
          m === 'src/kubernetes/client.ts' ||
          m === 'src/kubernetes/apply.ts' ||
          m === 'src/deploy/engine.ts' ||
          m.startsWith('src/signing/') ||
          m.startsWith('src/supplychain/'),
      ),
    ).toEqual([])
  })

  it('rollout status reads rollout state without the deploy engine, signing or the supply chain', () => {
    // Verifying stored state against the deploy's policy (rollout/trust.ts) loads them when it runs.
    const graph = relative(staticGraph('commands/rollout/status.ts'))
    expect(graph).toContain('src/rollout/trust.ts')
    expect(
      graph.filter(
        (m) => m === 'src/deploy/engine.ts' || m.startsWith('src/signing/') || m.startsWith('src/supplychain/'),
      ),
    ).toEqual([])
  })

  it('rollout status reads rollouts without the engine that drives them, the release gates or slo', () => {
    // src/rollout/status.ts reads; control.ts (promote, abort, resume, undo) drives, and the
    // commands that drive hand it the metrics provider and error budget of rollout-deps.ts.
    const graph = relative(staticGraph('commands/rollout/status.ts'))
    expect(graph).toContain('src/rollout/status.ts')
    expect(
      graph.filter(
        (m) =>
          [
            'src/rollout/control.ts',
            'src/rollout/engine.ts',
            'src/rollout/gates.ts',
            'src/rollout/start.ts',
            'commands/_base/rollout-deps.ts',
          ].includes(m) || m.startsWith('src/slo/'),
      ),
    ).toEqual([])
    // The check can fail: the commands that drive a rollout reach all of it.
    expect(relative(staticGraph('commands/rollout/promote.ts'))).toEqual(
      expect.arrayContaining(['src/rollout/control.ts', 'src/rollout/engine.ts', 'src/slo/status.ts']),
    )
  })

  it('finds a heavy client where one is imported statically (the check can fail)', () => {
    // The deploy engine applies to the cluster and verifies signatures: its graph holds both.
    const graph = relative(staticGraph('src/deploy/engine.ts'))
    expect(graph).toContain('src/kubernetes/client.ts')
    expect(graph).toContain('tweetnacl')
    expect(relative(staticGraph('src/config/parse.ts'))).toEqual(expect.arrayContaining(['zod', 'yaml']))
  })
})
