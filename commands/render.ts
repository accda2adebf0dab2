import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {planObjects, renderStep, summarizeTargets, type DeployTargetSummary} from '../src/deploy/plan.js'
import {formatPolicy, toYamlDocuments} from '../src/deploy/format.js'
import {checkPolicy, type PolicyReport} from '../src/kubernetes/policy.js'
import {placementPolicy} from '../src/config/placement.js'
import type {KubeObject} from '../src/kubernetes/resources.js'
import {LABEL} from '../src/kubernetes/labels.js'
import type {ScalingProvider} from '../src/config/schema.js'
import {RetailOpsCommand} from './_base/base-command.js'
import {renderFlags} from './_base/flags.js'

export interface RenderCommandResult {
  environment: string
  targets: DeployTargetSummary[]
  policy: PolicyReport
  objects: KubeObject[]
}

export default class Render extends RetailOpsCommand<typeof Render> {
  static override summary = 'Print the Kubernetes objects deploy would apply (YAML, or --json).'
  static override description =
    'Renders from retailops.yaml, templates/manifests, the artifacts lock and overlays/<service>.yaml, without contacting the cluster. Policy findings go to stderr; they do not change the exit code here.'
  static override exitCodes = ['OK', 'USAGE', 'CONFIG', 'NOT_FOUND'] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %> > manifests.yaml',
    '<%= config.bin %> <%= command.id %> checkout --tenant acme',
    '<%= config.bin %> <%= command.id %> --json | jq \'.result.objects[] | select(.kind == "Deployment")\'',
  ]

  static override strict = false
  static override args = {services: Args.string({description: 'Services to render (default: all).'})}
  static override flags = {
    ...renderFlags,
    kind: Flags.string({description: 'Only objects of this kind (repeatable).', multiple: true}),
  }

  async run(): Promise<RenderCommandResult> {
    const project = await this.loadProject()
    const plan = await renderStep({
      project,
      env: this.target(project),
      services: this.positionals,
      tenant: this.flags.tenant,
      scalingProvider: this.flags['scaling-provider'] as ScalingProvider | undefined,
      images: this.flags.image,
    })
    for (const note of plan.notes) this.warnUser(note)
    const all = planObjects(plan)
    const policy = checkPolicy(all, {
      signingRequired: project.config.signing.required,
      tierLabel: LABEL.tier,
      placement: placementPolicy(project.config),
    })
    const objects = this.flags.kind?.length
      ? all.filter((o) => this.flags.kind!.some((k) => k.toLowerCase() === o.kind.toLowerCase()))
      : all
    // 500 documents at a time: the text of 20,000 (and its redacted copies) is never held at once.
    if (objects.length === 0) this.log('')
    for (let i = 0; i < objects.length; i += 500) {
      const chunk = toYamlDocuments(objects.slice(i, i + 500))
      // Every document ends with a newline, which log() writes back; the last chunk is trimmed, as the whole was.
      this.log(i + 500 >= objects.length ? chunk.trimEnd() : chunk.slice(0, -1))
    }
    if (policy.findings.length > 0) this.ctx.out.info(formatPolicy(policy))
    return {environment: plan.environment, targets: summarizeTargets(plan), policy, objects}
  }
}
