import * as Flags from '@oclif/core/flags'

import {parseServiceUrls, parseTrafficLabels, type PrewarmResult, runPrewarm} from '../src/capacity/prewarm.js'
import {renderApply, renderCapacityPlan, renderSchedule, renderWarmup} from '../src/capacity/render.js'
import {durationFlag} from '../src/config/duration.js'
import {RetailOpsCommand} from './_base/base-command.js'
import {passThroughFlags, prometheusFlag, runnerImageFlag} from './_base/flags.js'
import {releaseEvents} from '../src/notify/events.js'

/**
 * Flags of this run that only make sense here (or are given to the scheduled job by the schedule
 * itself); every other flag given on the command line is passed on to the scheduled pre-warm, so
 * a flag added later cannot be forgotten again (as --rate-window was).
 */
const NOT_SCHEDULED = new Set([
  'campaign',
  'dry-run',
  'warm-only',
  'schedule',
  'unschedule',
  'runner-image',
  'k6-script-out',
  'allow-below-current',
  'config',
  'environment',
  'context',
  'namespace',
  'yes',
  'verbose',
  'json',
])

export default class Prewarm extends RetailOpsCommand<typeof Prewarm> {
  static override summary =
    'Plan, pre-scale and warm capacity for a campaign (HPA floors, node headroom, a k6 warm-up).'
  static override description = [
    'Plans the replicas each service in campaigns[].peak needs (peak × (1 + buffer) / (rpsPerPod × targetUtilization), N+1 and one per zone for revenue-critical services),',
    "checks them against maxReplicas, the namespace ResourceQuota and the node pools' free capacity, and prints the plan with its hourly cost (--dry-run stops there).",
    'Then saves the current HPA values in the ConfigMap retailops-prewarm-<campaign> (before changing anything; a re-run never overwrites it), raises the HPA floors,',
    'disables HPA scale-down, adds placeholder pods (PriorityClass -10) for the node shortfall, waits until the new replicas are Ready, and runs a k6 warm-up',
    "with the campaign's traffic mix and thresholds from the SLOs. `retailops prewarm restore --campaign NAME` puts everything back.",
    '--schedule instead creates CronJobs that run the pre-warm prewarmLead before the start and the restore after the end.',
  ].join(' ')
  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'SIGNATURE',
    'DEPLOY_FAILED',
    'REFUSED',
    'WARMUP_THRESHOLD',
    'CAPACITY_NOT_READY',
    'WARMUP_ABORTED',
    'INTERRUPTED',
  ] as const
  static override releaseEvents = releaseEvents(['prewarm.applied', 'prewarm.warmup-failed'])
  static override examples = [
    '<%= config.bin %> <%= command.id %> --campaign black-friday --dry-run',
    '<%= config.bin %> <%= command.id %> --campaign black-friday',
    '<%= config.bin %> <%= command.id %> --campaign black-friday --no-warm --raise-max',
    '<%= config.bin %> <%= command.id %> --campaign black-friday --warm-only --service-url catalog=http://127.0.0.1:8081 --service-url cart=http://127.0.0.1:8082',
    '<%= config.bin %> <%= command.id %> --campaign black-friday --schedule',
    '<%= config.bin %> <%= command.id %> --campaign black-friday --schedule --runner-image 127.0.0.1:5000/retailops-runner@sha256:…',
    '<%= config.bin %> prewarm restore --campaign black-friday',
  ]
  static override flags = {
    campaign: Flags.string({char: 'c', description: 'Campaign from campaigns[] in retailops.yaml.', required: true}),
    'dry-run': Flags.boolean({description: 'Print the plan and change nothing.'}),
    warm: Flags.boolean({
      description: 'Run the k6 warm-up after scaling (--no-warm to skip it).',
      allowNo: true,
      default: true,
    }),
    'warm-only': Flags.boolean({
      description: 'Only run the k6 warm-up (the capacity is already up).',
      exclusive: ['dry-run', 'schedule'],
    }),
    'raise-max': Flags.boolean({
      description:
        "Raise an HPA's maxReplicas when the plan needs more (restore puts it back); without it such a plan is refused.",
    }),
    'allow-below-current': Flags.boolean({
      description: 'Leave services whose peak fits their current capacity as they are, instead of refusing the plan.',
    }),
    'node-headroom': Flags.boolean({
      description: 'Add placeholder pods for the node shortfall (default: campaigns[].nodeHeadroom).',
      allowNo: true,
    }),
    timeout: Flags.string({description: 'How long to wait for the new replicas to be Ready.', default: '10m'}),
    lookback: Flags.string({
      description: 'How far back Prometheus is searched for the observed peak (multiplier peaks).',
      default: '7d',
    }),
    'rate-window': Flags.string({description: 'rate() window for the observed peak.', default: '5m'}),
    prometheus: prometheusFlag,
    'traffic-label': Flags.string({
      description: 'KEY=VALUE label matcher added to the observed-traffic query (repeatable), e.g. namespace=shop.',
      multiple: true,
    }),
    'base-url': Flags.string({
      description:
        'Where the warm-up reaches the services (a gateway routing all of them); default environments.<env>.baseUrl.',
    }),
    'service-url': Flags.string({
      description: 'NAME=URL for one service (repeatable), e.g. when the services run separately.',
      multiple: true,
    }),
    'payment-token': Flags.string({
      description: "Test payment token the warm-up's checkouts use (never a real card).",
      default: 'tok_prewarm_test',
    }),
    'k6-script-out': Flags.string({description: 'Keep the generated k6 script in this file.'}),
    'pool-label': Flags.string({
      description:
        'Node label naming the pool (default: detected, e.g. retailops.dev/pool, cloud.google.com/gke-nodepool).',
    }),
    'default-pool': Flags.string({
      description:
        'Pool of services without a pool nodeSelector (default: "general" or "default", else the largest pool).',
    }),
    'placeholder-image': Flags.string({
      description: 'Image of the headroom placeholder pods.',
      default: 'registry.k8s.io/pause:3.10',
    }),
    schedule: Flags.boolean({
      description: 'Create CronJobs that run the pre-warm prewarmLead before the start and the restore after the end.',
    }),
    'runner-image': runnerImageFlag('Runner image the scheduled jobs run'),
    unschedule: Flags.boolean({
      description: "Delete the campaign's CronJobs, their ConfigMap and Secret, and the runner's permissions for it.",
      exclusive: ['schedule', 'dry-run', 'warm-only'],
    }),
  }

  async run(): Promise<PrewarmResult> {
    const project = await this.loadProject()
    const env = this.target(project)
    const f = this.flags
    const pass = passThroughFlags(f, this.explicitFlags, NOT_SCHEDULED)
    const result = await runPrewarm(
      {
        project,
        env,
        campaign: f.campaign,
        dryRun: f['dry-run'],
        noWarm: !f.warm,
        warmOnly: f['warm-only'],
        raiseMax: f['raise-max'],
        allowBelowCurrent: f['allow-below-current'],
        nodeHeadroom: f['node-headroom'],
        timeoutMs: durationFlag('timeout', f.timeout),
        lookbackMs: durationFlag('lookback', f.lookback),
        rateWindowMs: durationFlag('rate-window', f['rate-window']),
        trafficLabels: parseTrafficLabels(f['traffic-label']),
        prometheusUrl: f.prometheus,
        baseUrl: f['base-url'],
        serviceUrls: parseServiceUrls(f['service-url']),
        poolLabel: f['pool-label'],
        defaultPool: f['default-pool'],
        placeholderImage: f['placeholder-image'],
        paymentToken: f['payment-token'],
        scriptOut: f['k6-script-out'],
        schedule: f.schedule,
        runnerImage: f['runner-image'],
        scheduledFlags: pass,
        unschedule: f.unschedule,
      },
      this.ctx,
    )
    if (result.plan) this.log(renderCapacityPlan(result.plan))
    if (result.plan?.problems.length) this.setOutcome('REFUSED')
    if (result.apply) this.log(`\n${renderApply(result.apply)}`)
    if (result.schedule) {
      this.log(`\n${renderSchedule(result.schedule)}`)
    }
    if (result.warmup) {
      this.log(`\n${renderWarmup(result.warmup)}`)
      if (result.warmup.aborted) this.setOutcome('WARMUP_ABORTED')
      else if (!result.warmup.passed) this.setOutcome('WARMUP_THRESHOLD')
    }
    if (result.mode === 'apply' || result.mode === 'warm')
      this.log(
        `\nWhen the campaign is over: retailops prewarm restore --campaign ${result.campaign}${f.namespace ? ` --namespace ${f.namespace}` : ''}`,
      )
    return result
  }
}
