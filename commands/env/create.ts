import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {parseTtl, previewOwner} from '../../src/env/names.js'
import {type CreatePreviewResult, createPreview} from '../../src/env/preview.js'
import {renderCreated} from '../../src/env/render.js'
import {durationFlag} from '../../src/config/duration.js'
import {RetailOpsCommand} from '../_base/base-command.js'

export default class EnvCreate extends RetailOpsCommand<typeof EnvCreate> {
  static override summary =
    'Create a preview environment: its own namespace with a TTL, running the current images or a branch’s.'
  static override description = [
    "Creates the namespace <project>-preview-NAME in the environment's cluster (--environment) with a ResourceQuota and LimitRange, default-deny NetworkPolicies plus traffic within the namespace,",
    'Pod Security `restricted`, and the owner (CI identity, git user or $USER; RETAILOPS_OWNER overrides), creation time and expiry as annotations; then deploys the services into it as the environment preview-NAME',
    '(its own applyset; no gateway route, no tenants, no Secret shared with another environment: Secrets and ConfigMaps the services mount are created empty).',
    'Images: the artifacts lock, or with --from-branch the lock committed on that branch (never a build); they are verified and policy-checked before anything is written.',
    'Prints how to reach each service. `env sweep` deletes it once its TTL has passed.',
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
    'PREVIEW_EXISTS',
    'INTERRUPTED',
  ] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %> pr-142',
    '<%= config.bin %> <%= command.id %> pr-142 --from-branch feature/cart --ttl 4h --services catalog,cart',
    '<%= config.bin %> <%= command.id %> demo --environment staging --ttl 2d --json',
  ]
  static override args = {
    name: Args.string({description: 'Preview name (lowercase letters, digits, dashes).', required: true}),
  }
  static override flags = {
    'from-branch': Flags.string({
      description:
        "Deploy the images recorded in this branch's committed artifacts lock (built and pushed by that branch's pipeline).",
    }),
    ttl: Flags.string({
      description: 'How long the preview lives before `env sweep` deletes it (1m to 30d).',
      default: '8h',
    }),
    services: Flags.string({
      description: 'Only these services (comma-separated or repeated; default all).',
      multiple: true,
      delimiter: ',',
    }),
    wait: Flags.boolean({
      description: 'Wait for the Deployments to be ready (--no-wait to return after apply).',
      default: true,
      allowNo: true,
    }),
    timeout: Flags.string({description: 'How long to wait for the Deployments.'}),
  }

  async run(): Promise<CreatePreviewResult> {
    const project = await this.loadProject()
    const env = this.target(project)
    const f = this.flags
    const ttlMs = parseTtl(f.ttl)
    const result = await createPreview(
      {
        project,
        env,
        name: this.args.name,
        ttlMs,
        services: f.services,
        fromBranch: f['from-branch'],
        owner: await previewOwner(project.dir),
        wait: f.wait,
        timeoutMs: durationFlag('timeout', f.timeout),
      },
      this.ctx,
    )
    this.log(renderCreated(result))
    if (result.outcome !== 'OK') this.setOutcome(result.outcome)
    return result
  }
}
