import {stringify} from 'yaml'

import type {PolicyFinding, PolicyReport, Severity} from '../kubernetes/policy.js'
import type {KubeObject} from '../kubernetes/resources.js'
import {emitYaml} from '../report/yaml.js'
import {makeChalk, renderTable} from '../ui/index.js'
import type {SupplyChainResult} from './admission.js'
import type {DeployResult, ObjectDiff} from './engine.js'

/** Human renderings of the engine's results; the commands print them, --json prints the results. */

export function toYamlDocuments(objects: KubeObject[]): string {
  // render parses its templates with the yaml package anyway: it writes what emitYaml leaves to it.
  return objects.map((o) => `---\n${emitYaml(o) ?? stringify(o, {lineWidth: 0})}`).join('')
}

export function objectsOf(f: PolicyFinding): string {
  return f.objects.length <= 1
    ? f.object
    : `${f.object} (and ${f.objects.length - 1} more: ${f.objects.slice(1, 4).join(', ')}${f.objects.length > 4 ? ', …' : ''})`
}

export function formatPolicy(report: PolicyReport, severities: Severity[] = ['error', 'warning']): string {
  if (report.findings.length === 0) return 'Policy: no findings.'
  const c = makeChalk()
  const lines = [
    `Policy: ${report.errors} error${report.errors === 1 ? '' : 's'}, ${report.warnings} warning${report.warnings === 1 ? '' : 's'}`,
  ]
  for (const f of [...report.findings]
    .filter((x) => severities.includes(x.severity))
    .sort((a, b) => (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1))) {
    const mark = f.severity === 'error' ? c.red('✖ error  ') : c.yellow('▲ warning')
    lines.push(`${mark} ${objectsOf(f)}: ${f.message} [${f.rule}]`, `            ${c.dim('fix:')} ${f.fix}`)
  }
  return lines.join('\n')
}

/** The supply-chain policy's refusals (image, rule, fix), waivers used and expired: empty when there is nothing to say. */
export function formatSupplyChain(result: SupplyChainResult): string {
  if (result.outcome === 'not-configured') return ''
  const c = makeChalk()
  const lines: string[] = []
  for (const r of result.refusals)
    lines.push(`${c.red('✖ refused')} ${r.message} [supply-chain/${r.rule}]`, `            ${c.dim('fix:')} ${r.fix}`)
  for (const d of result.decisions)
    for (const r of d.refusals)
      lines.push(
        `${c.red('✖ refused')} ${r.message} [supply-chain/${r.rule}]`,
        `            ${c.dim('run by:')} ${d.objects.slice(0, 3).join(', ')}${d.objects.length > 3 ? ', …' : ''}`,
        `            ${c.dim('fix:')} ${r.fix}`,
      )
  for (const d of result.decisions)
    for (const v of d.vulnerabilities.filter((x) => x.waiver && !x.waiver.expired))
      lines.push(
        `${c.yellow('▲ waived ')} ${v.id} (${v.severity}) in ${v.package}@${v.version} for ${v.service} until ${v.waiver!.expires}: ${v.waiver!.reason}`,
      )
  for (const w of result.expiredWaivers)
    lines.push(
      `${c.yellow('▲ expired')} waiver of ${w.id} for ${w.service} (${result.waiversFile}) expired on ${w.expires}: it waives nothing`,
    )
  if (result.override)
    lines.push(
      c.yellow.bold(`▲ Supply-chain policy OVERRIDDEN (--skip-verify --force-release): ${result.override.reason}`),
    )
  if (result.outcome === 'admitted')
    lines.push(
      c.green(
        `✔ Supply chain: ${result.decisions.length} image${result.decisions.length === 1 ? '' : 's'} admitted by supplyChain.policy.`,
      ),
    )
  return lines.join('\n')
}

export function formatDiffs(diffs: ObjectDiff[]): string {
  const c = makeChalk()
  const out: string[] = []
  for (const d of diffs) {
    if (d.action === 'unchanged') continue
    const note = d.source === 'rendered' ? c.dim(' (namespace does not exist yet: rendered object shown)') : ''
    out.push(c.bold(`${d.action} ${d.ref}`) + note)
    for (const line of d.diff.split('\n')) {
      if (line.startsWith('+++') || line.startsWith('---')) out.push(c.bold(line))
      else if (line.startsWith('+')) out.push(c.green(line))
      else if (line.startsWith('-')) out.push(c.red(line))
      else if (line.startsWith('@@')) out.push(c.cyan(line))
      else out.push(line)
    }
  }
  const counts = {create: 0, update: 0, delete: 0, unchanged: 0}
  for (const d of diffs) counts[d.action] += 1
  out.push(
    `${counts.create} to create, ${counts.update} to update, ${counts.delete} to delete, ${counts.unchanged} unchanged.`,
  )
  return out.join('\n')
}

export function formatDeploy(result: DeployResult): string {
  const c = makeChalk()
  const lines: string[] = []
  // Warnings already went to stderr as they were found; errors are listed here with their fixes.
  if (result.policy.errors > 0) lines.push(formatPolicy(result.policy, ['error']), '')
  const supplyChain = formatSupplyChain(result.supplyChain)
  if (supplyChain) lines.push(supplyChain, '')
  if (result.outcome === 'SUPPLY_CHAIN_REFUSED') {
    const refused = result.supplyChain.decisions.filter((d) => !d.admitted).length
    lines.push(
      c.red(
        `✖ The supply-chain policy refused ${refused > 0 ? `${refused} image${refused === 1 ? '' : 's'}` : 'this deploy'}: nothing was applied.`,
      ),
    )
    return lines.join('\n')
  }
  if (result.outcome === 'POLICY') {
    lines.push(
      c.red(
        `✖ Policy checks found ${result.policy.errors} error${result.policy.errors === 1 ? '' : 's'}: nothing was applied.`,
      ),
    )
    return lines.join('\n')
  }
  if (result.diffs) {
    lines.push(formatDiffs(result.diffs), c.dim('Dry run (server-side, dryRun=All): nothing was changed.'))
    return lines.join('\n')
  }
  lines.push(
    renderTable(result.targets, [
      {header: 'TARGET', value: (t) => t.id},
      {header: 'MODEL', value: (t) => t.model},
      {header: 'TENANTS', value: (t) => t.tenants.join(', ') || '-'},
      {header: 'SERVICES', value: (t) => t.services.length, align: 'right'},
      {header: 'OBJECTS', value: (t) => t.objects, align: 'right'},
    ]),
    '',
    `Applied: ${result.apply.created} created, ${result.apply.configured} configured, ${result.apply.unchanged} unchanged${result.pruned.length ? `; pruned ${result.pruned.filter((p) => p.deleted).length}` : ''}.`,
  )
  if (result.signatureVerification === 'skipped')
    lines.push(c.yellow.bold('▲ Image signatures were NOT verified (--skip-verify); recorded on each Deployment.'))
  for (const f of result.apply.failed) {
    lines.push(c.red(`✖ ${f.ref}: ${f.statusCode ? `HTTP ${f.statusCode}: ` : ''}${f.message}`))
    for (const conflict of f.conflicts ?? []) lines.push(`    conflict: ${conflict}`)
  }
  for (const p of result.pruned.filter((x) => !x.deleted)) lines.push(c.red(`✖ prune ${p.ref}: ${p.error}`))
  for (const ns of result.orphanedNamespaces)
    lines.push(
      c.yellow(
        `▲ Namespace ${ns} was created by retailops and is no longer rendered; it was kept (delete it with \`kubectl delete namespace ${ns}\` once its data is safe).`,
      ),
    )
  const failed = result.rollouts.filter((r) => r.phase !== 'complete')
  if (result.rollouts.length > 0) {
    lines.push(
      failed.length === 0
        ? c.green(`✔ ${result.rollouts.length} Deployment${result.rollouts.length === 1 ? '' : 's'} rolled out.`)
        : '',
    )
    for (const r of failed) {
      lines.push(
        c.red(
          `✖ ${r.ref}: ${r.phase === 'timeout' ? 'did not finish in time' : r.phase === 'failed' ? 'failed' : 'stopped waiting'}: ${r.message}`,
        ),
      )
      for (const reason of r.reasons) lines.push(`    ${reason}`)
    }
  }
  for (const n of result.notes) lines.push(c.dim(`note: ${n}`))
  return lines.filter((l, i, a) => !(l === '' && a[i - 1] === '')).join('\n')
}
