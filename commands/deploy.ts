import {Args, Flags} from '@oclif/core'

import {type DeployResult, runDeploy, timeoutMs} from '../src/deploy/engine.js'
import {formatDeploy} from '../src/deploy/format.js'
import {describeExitCodes, RetailOpsCommand} from './_base/base-command.js'

/** Flags deploy shares with render and diff. */
export const renderFlags = {
  tenant: Flags.string({description: 'Deploy only this tenant (default: all tenants).'}),
  image: Flags.string({description: 'Use this image for a service instead of the artifacts lock: SERVICE=REF (repeatable).', multiple: true}),
}

export default class Deploy extends RetailOpsCommand<typeof Deploy> {
  static override summary = 'Render, policy-check, server-side apply and roll out services (rolling update).'
  static override description = `Renders each service (Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget, ServiceAccount, NetworkPolicy; per tenant namespace a ResourceQuota and LimitRange), checks policy (errors stop the deploy before anything is applied), verifies image signatures, applies everything with server-side apply (field manager "retailops"), prunes what retailops applied before and no longer renders, and waits for every Deployment to roll out, explaining failures from pod status and events.

EXIT CODES
${describeExitCodes(['OK', 'USAGE', 'CONFIG', 'NOT_FOUND', 'UNAVAILABLE', 'PERMISSION', 'POLICY', 'DEPLOY_FAILED', 'INTERRUPTED'])}`

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
    'force-conflicts': Flags.boolean({description: 'Take over fields another field manager owns (after a conflict was reported).'}),
    'skip-verify': Flags.boolean({description: 'Do not verify image signatures (loud warning; recorded on each Deployment).'}),
    prune: Flags.boolean({description: 'Delete what retailops applied before and no longer renders.', default: true, allowNo: true}),
    wait: Flags.boolean({description: 'Wait for every Deployment to roll out.', default: true, allowNo: true}),
    timeout: Flags.string({description: 'How long to wait for rollouts (default: the longest progress deadline plus 1m).'}),
    concurrency: Flags.integer({description: 'Requests in flight at once.', default: 32, min: 1, max: 256}),
  }

  async run(): Promise<DeployResult> {
    const project = await this.loadProject()
    const result = await runDeploy(
      {
        project,
        env: this.target(project),
        services: this.positionals,
        tenant: this.flags.tenant,
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
    if (result.outcome !== 'OK') this.setOutcome(result.outcome)
    return result
  }
}
