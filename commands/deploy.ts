import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {timeoutMs} from '../src/deploy/engine.js'
import {formatDeploy} from '../src/deploy/format.js'
import {UsageError} from '../src/errors/index.js'
import {formatRelease} from '../src/rollout/format.js'
import {release, type DeployReleaseResult} from '../src/rollout/release.js'
import {parseStepsFlag, STEPS_SYNTAX} from '../src/rollout/steps.js'
import {verifiedRunnerImage} from '../src/runner/resolve.js'
import {errorBudgetSource} from '../src/slo/status.js'
import type {ScalingProvider} from '../src/config/schema.js'
import {RetailOpsCommand} from './_base/base-command.js'
import {renderFlags, runnerImageFlag} from './_base/flags.js'
import {releaseEvents} from '../src/notify/events.js'

export default class Deploy extends RetailOpsCommand<typeof Deploy> {
  static override summary =
    'Render, policy-check, server-side apply and roll out services (rolling, or --canary / --blue-green with analysis).'
  static override description = `Renders each service (Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget, ServiceAccount, NetworkPolicy; per tenant namespace a ResourceQuota and LimitRange), checks policy (errors stop the deploy before anything is applied), verifies image signatures, applies everything with server-side apply (field manager "retailops"), prunes what this deploy target (project, environment, namespace, cluster) applied before and no longer renders, never outside the namespaces it renders, and waits for every Deployment to roll out, explaining failures from pod status and events.`

  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'SIGNATURE',
    'POLICY',
    'DEPLOY_FAILED',
    'REFUSED',
    'ROLLOUT_HELD',
    'SUPPLY_CHAIN_REFUSED',
    'ROLLOUT_ABORTED',
    'ROLLOUT_PAUSED',
    'ROLLOUT_INCONCLUSIVE',
    'ROLLOUT_TIMED_OUT',
    'TRAFFIC_NOT_RETURNED',
    'INTERRUPTED',
  ] as const
  static override releaseEvents = releaseEvents(['rollout.*', 'release.refused.*'])
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> checkout payments --environment production',
    '<%= config.bin %> <%= command.id %> --tenant acme --dry-run',
    '<%= config.bin %> <%= command.id %> --image checkout=127.0.0.1:5000/shop/checkout@sha256:… --json',
  ]

  static override strict = false
  static override args = {services: Args.string({description: 'Services to deploy (default: all).'})}
  static override flags = {
    ...renderFlags,
    'dry-run': Flags.boolean({description: 'Server-side dry run (dryRun=All): print the diff, change nothing.'}),
    'force-conflicts': Flags.boolean({
      description: 'Take over fields another field manager owns (after a conflict was reported).',
    }),
    'skip-verify': Flags.boolean({
      description:
        'Do not verify image signatures (loud warning; recorded on each Deployment). Under a supply-chain policy (supplyChain.policy) it is refused unless given with --force-release --reason, which overrides the policy and is recorded on every workload.',
    }),
    prune: Flags.boolean({
      description: 'Delete what retailops applied before and no longer renders.',
      default: true,
      allowNo: true,
    }),
    wait: Flags.boolean({description: 'Wait for every Deployment to roll out.', default: true, allowNo: true}),
    timeout: Flags.string({
      description: 'How long to wait for rollouts (default: the longest progress deadline plus 1m).',
    }),
    concurrency: Flags.integer({description: 'Requests in flight at once.', default: 32, min: 1, max: 256}),
    canary: Flags.boolean({
      description: 'Release by canary: steps of traffic weights, pauses and metric analysis; automatic rollback.',
      exclusive: ['blue-green'],
      helpGroup: 'RELEASE',
    }),
    'blue-green': Flags.boolean({
      description: 'Release by blue-green: preview Service, pre/post-promotion analysis, switch of the active Service.',
      exclusive: ['canary'],
      helpGroup: 'RELEASE',
    }),
    steps: Flags.string({
      description: `Canary steps, comma-separated (default: rollout.steps, else 10,analysis,50,analysis,100):\n${STEPS_SYNTAX}`,
      dependsOn: ['canary'],
      helpGroup: 'RELEASE',
    }),
    router: Flags.string({
      description: "Traffic router (default: rollout.router, else the environment's).",
      options: ['gateway', 'nginx', 'replicas'],
      helpGroup: 'RELEASE',
    }),
    'force-release': Flags.boolean({
      description:
        'Release despite a freeze window or an exhausted error budget (needs --reason; recorded). Gates apply to canary and blue-green releases, and to rolling deploys that change the pods of a revenue-critical service.',
      helpGroup: 'RELEASE',
    }),
    reason: Flags.string({
      description: 'Why the release is forced (recorded in the rollout state or history and on the Deployment).',
      dependsOn: ['force-release'],
      helpGroup: 'RELEASE',
    }),
    detach: Flags.boolean({
      description:
        'With --canary or --blue-green: set the release up here, then hand it to a Job in the cluster that drives it to the end (the runner image by digest, Pod Security restricted, a ServiceAccount allowed only what driving needs), and exit 0. Follow it from anywhere with `rollout status --watch`.',
      helpGroup: 'RELEASE',
    }),
    'runner-image': runnerImageFlag('With --detach: the runner image the Job runs', {
      dependsOn: ['detach'],
      helpGroup: 'RELEASE',
    }),
  }

  async run(): Promise<DeployReleaseResult> {
    const project = await this.loadProject()
    const env = this.target(project)
    const strategy = this.flags.canary ? 'canary' : this.flags['blue-green'] ? 'blue-green' : undefined
    if (this.flags.detach && !strategy)
      throw new UsageError(
        '--detach hands a canary or blue-green release to a Job in the cluster: add --canary or --blue-green (a rolling deploy has nothing to drive).',
      )
    if (this.flags.detach && this.flags.wait === false)
      throw new UsageError(
        '--detach and --no-wait both leave the rollout to someone else: --detach hands it to a Job in the cluster, --no-wait to `rollout resume`. Choose one.',
      )
    // Before anything is written: the image the Job will run must be pinned and verified.
    const runner = this.flags.detach
      ? await verifiedRunnerImage(project, this.flags['runner-image'], this.ctx)
      : undefined
    const {result, exit} = await release(
      {
        project,
        env,
        strategy,
        steps: this.flags.steps ? parseStepsFlag(this.flags.steps) : undefined,
        router: this.flags.router as 'gateway' | 'nginx' | 'replicas' | undefined,
        force: this.flags['force-release'] ? {reason: this.flags.reason} : undefined,
        errorBudget: errorBudgetSource(project.config, env.prometheus, env.namespace),
        detach:
          runner && !this.flags['dry-run']
            ? {
                runnerImage: runner.image,
                environment: project.config.environments[env.name] ? env.name : undefined,
                project,
                skipVerify: this.flags['skip-verify'],
              }
            : undefined,
        services: this.positionals,
        tenant: this.flags.tenant,
        scalingProvider: this.flags['scaling-provider'] as ScalingProvider | undefined,
        images: this.flags.image,
        dryRun: this.flags['dry-run'],
        forceConflicts: this.flags['force-conflicts'],
        skipVerify: this.flags['skip-verify'],
        prune: this.flags.prune,
        wait: this.flags.wait,
        timeoutMs: timeoutMs(this.flags.timeout),
        concurrency: this.flags.concurrency,
      },
      this.ctx,
    )
    this.log(formatDeploy(result))
    if (result.forced)
      this.log(
        `forced release: ${result.forced.reason}${result.forced.overridden.length ? ` (overrode: ${result.forced.overridden.join('; ')})` : ''}`,
      )
    if (result.strategy !== 'rolling') this.log(formatRelease(result.release))
    if (exit !== 'OK') this.setOutcome(exit)
    return result
  }
}
