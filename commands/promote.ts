import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {defaultImageVerifier} from '../src/deploy/signature.js'
import {UsageError} from '../src/errors/index.js'
import {promote, type PromoteResult} from '../src/promote/promote.js'
import {renderPromotion} from '../src/promote/render.js'
import {durationFlag} from '../src/config/duration.js'
import {resolveEnvironment} from '../src/config/resolve.js'
import {release} from '../src/rollout/release.js'
import {errorBudgetSource} from '../src/slo/status.js'
import {RetailOpsCommand} from './_base/base-command.js'
import {releaseEvents} from '../src/notify/events.js'

export default class Promote extends RetailOpsCommand<typeof Promote> {
  static override summary =
    'Release into one environment exactly the image digests another runs, once they have soaked there.'
  static override description = [
    'Reads the image digests the source environment RUNS (its Deployments, read back from its cluster: never a rebuild, never the local artifacts lock)',
    "and releases exactly those into the target with the target's own strategy (rollout.strategy: rolling, canary or blue-green) and release gates.",
    'Refused, with nothing applied (PROMOTION_REFUSED), unless every service has been fully rolled out in the source for at least promotion.soak',
    "(from the source deployment controller's record of when its current ReplicaSet finished rolling out), none of its SLOs burns in the source",
    "(exhausted error budget or page-level burn), and every digest's signature verifies with signing.publicKey, as do the attestations supplyChain.policy requires (SBOM, SLSA provenance).",
    'With promotion.order, a promotion that skips a stage or goes backwards is refused (PROMOTION_OUT_OF_ORDER) unless --force --reason.',
    'Every promotion, refused ones too, is recorded in a ConfigMap in the target namespace: `retailops promote history` lists them.',
  ].join(' ')
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
    'PROMOTION_REFUSED',
    'PROMOTION_OUT_OF_ORDER',
    'ROLLOUT_ABORTED',
    'ROLLOUT_PAUSED',
    'ROLLOUT_INCONCLUSIVE',
    'ROLLOUT_TIMED_OUT',
    'TRAFFIC_NOT_RETURNED',
    'INTERRUPTED',
  ] as const
  static override releaseEvents = releaseEvents(['rollout.*', 'release.refused.*'])
  static override examples = [
    '<%= config.bin %> <%= command.id %> --from staging --to production',
    '<%= config.bin %> <%= command.id %> --from staging --to production checkout cart --json',
    '<%= config.bin %> <%= command.id %> --from dev --to production --force --reason "hotfix INC-4411, staging down"',
    '<%= config.bin %> promote history --environment production',
  ]
  static override strict = false
  static override args = {
    services: Args.string({description: 'Services to promote (default: every service the source runs).'}),
  }
  static override flags = {
    from: Flags.string({description: 'The environment whose running digests are promoted.', required: true}),
    to: Flags.string({description: 'The environment they are released into.', required: true}),
    force: Flags.boolean({
      description: 'Promote although promotion.order says otherwise (skipping a stage, or backwards); needs --reason.',
      dependsOn: ['reason'],
    }),
    reason: Flags.string({description: 'Why --force (recorded in the promotion history).', dependsOn: ['force']}),
    timeout: Flags.string({
      description: "How long the target's release may take, e.g. 15m (default: its progress deadlines).",
    }),
  }

  async run(): Promise<PromoteResult> {
    const project = await this.loadProject()
    const f = this.flags
    if (f.force && !f.reason?.trim())
      throw new UsageError('--force needs --reason "…": it is recorded with the promotion.')
    const config = project.config
    const timeoutMs = durationFlag('--timeout', f.timeout)
    const source = config.environments[f.from] ? resolveEnvironment(config, f.from, project.dir) : undefined
    const result = await promote(
      {
        project,
        from: f.from,
        to: f.to,
        services: this.positionals,
        force: f.force ? {reason: f.reason!.trim()} : undefined,
      },
      {
        verify: defaultImageVerifier(project),
        // The slo engine's burn evaluation of the SOURCE: its namespace's series, its Prometheus.
        burn: errorBudgetSource(config, source?.prometheus, source?.namespace),
        release: async ({strategy, services, images}, ctx) => {
          const env = resolveEnvironment(config, f.to, project.dir)
          const {exit} = await release(
            {
              project,
              env,
              strategy: strategy === 'rolling' ? undefined : strategy,
              errorBudget: errorBudgetSource(config, env.prometheus, env.namespace),
              services,
              images,
              timeoutMs,
            },
            ctx,
          )
          return {exit}
        },
      },
      this.ctx,
    )
    this.log(renderPromotion(result.record))
    if (result.exit !== 'OK') this.setOutcome(result.exit)
    return result
  }
}
