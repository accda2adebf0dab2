import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {writeReport} from '../../src/report/index.js'
import {generateRules, renderRulesYaml, type RulesFormat, type RulesResult} from '../../src/slo/rules.js'
import {UsageError} from '../../src/errors/index.js'
import {redact} from '../../src/ui/secrets.js'
import {RetailOpsCommand} from '../_base/base-command.js'

export interface SloRulesResult extends RulesResult {
  file?: string
  format: RulesFormat
}

export default class SloRules extends RetailOpsCommand<typeof SloRules> {
  static override summary =
    'Generate Prometheus recording and alerting rules for the SLOs, with Sloth-compatible names.'
  static override description = [
    'Recording rules slo:sli_error:ratio_rate<window> (5m … 3d and the SLO period), the slo:* metadata rules and sloth_slo_info, and one alert per SLO',
    'with sloth_severity page (1h/5m, 6h/30m) and ticket (1d/2h, 3d/6h), labelled sloth_id, sloth_service and sloth_slo as Sloth generates them.',
    'The output passes `promtool check rules`; load it with rule_files, or --format prometheus-rule for the Prometheus Operator.',
  ].join(' ')
  static override exitCodes = ['OK', 'USAGE', 'CONFIG', 'NOT_FOUND'] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %> > slo-rules.yml && promtool check rules slo-rules.yml',
    '<%= config.bin %> <%= command.id %> checkout --output rules/checkout-slos.yml',
    '<%= config.bin %> <%= command.id %> --format prometheus-rule --label team=payments',
  ]
  static override strict = false
  static override args = {
    services: Args.string({description: 'Services to generate rules for (default: all with SLOs).'}),
  }
  static override flags = {
    output: Flags.string({char: 'o', description: 'Write the rules to this file instead of stdout.'}),
    format: Flags.string({
      description: 'prometheus: a rule_files document; prometheus-rule: a monitoring.coreos.com/v1 PrometheusRule.',
      options: ['prometheus', 'prometheus-rule'],
      default: 'prometheus',
    }),
    label: Flags.string({description: 'Extra label on every rule, KEY=VALUE (repeatable).', multiple: true}),
    name: Flags.string({description: 'metadata.name of the PrometheusRule.', default: 'retailops-slos'}),
    'all-namespaces': Flags.boolean({
      description:
        "Count every namespace's series, not only the environment's namespace (label `namespace`), as `slo --all-namespaces`.",
    }),
  }

  async run(): Promise<SloRulesResult> {
    const project = await this.loadProject()
    const labels: Record<string, string> = {}
    for (const l of this.flags.label ?? []) {
      const m = /^([a-zA-Z_][a-zA-Z0-9_]*)=(.*)$/.exec(l)
      if (!m) throw new UsageError(`--label ${l}: expected KEY=VALUE with a Prometheus label name.`)
      labels[m[1]] = m[2]
    }
    const format = this.flags.format as RulesFormat
    const env = this.target(project)
    const result = generateRules({
      config: project.config,
      services: this.positionals.filter(Boolean),
      labels,
      version: this.config.version,
      namespace: this.flags['all-namespaces'] ? undefined : env.namespace,
    })
    const yaml = await renderRulesYaml(result, format, {
      name: this.flags.name,
      namespace: format === 'prometheus-rule' ? env.namespace : undefined,
    })
    if (this.flags.output) {
      const file = await writeReport(this.flags.output, yaml)
      this.ctx.out.info(
        `${result.slos.length} SLOs, ${result.groups.reduce((n, g) => n + g.rules.length, 0)} rules written to ${file}`,
      )
      return {...result, file, format}
    }
    if (!this.jsonEnabled()) process.stdout.write(redact(yaml))
    return {...result, format}
  }
}
