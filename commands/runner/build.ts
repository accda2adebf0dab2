import * as Flags from '@oclif/core/flags'

import {buildRunnerImage, type RunnerBuildResult} from '../../src/runner/image.js'
import {RetailOpsCommand} from '../_base/base-command.js'

export default class RunnerBuild extends RetailOpsCommand<typeof RunnerBuild> {
  static override summary =
    'Build, push, sign and verify the retailops runner image, and record its digest in the artifacts lock under "runner".'
  static override description = [
    'The image holds this CLI (dist, templates, manifest) and its production dependencies on a Node 24 base: no compilers, user 65532,',
    'nothing written outside /tmp, so it runs with a read-only root filesystem. It goes to <registry>/<project>/retailops-runner,',
    "is signed with the project's key (signing.key, or --key env://NAME) and verified with its public key like the services' images;",
    'scheduled jobs and detached rollouts run it by digest (runner.image in retailops.yaml wins when set).',
    "When the lock's runner was built from the same package files (its tag holds the version and the context digest), the registry still",
    'serves it and it verifies, nothing is built and the digest stays (result upToDate); --force builds anyway.',
    "The project's GitLab pipeline (.gitlab-ci.yml from `retailops init --ci gitlab`) runs its jobs in this image: its image line is pinned",
    'to the digest (result pinned); commit it.',
  ].join(' ')
  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'BUILD_FAILED',
    'PUSH_FAILED',
    'SIGNATURE',
    'INTERRUPTED',
  ] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    'COSIGN_PASSWORD=… <%= config.bin %> <%= command.id %> --base-image 127.0.0.1:5000/retailops/node-base:24 --key env://COSIGN_PRIVATE_KEY --json',
  ]
  static override flags = {
    'base-image': Flags.string({
      description: 'Node 24 base image (BASE_IMAGE; default node:24-slim).',
      env: 'RETAILOPS_BASE_IMAGE',
    }),
    key: Flags.string({description: 'Encrypted cosign private key: a file or env://NAME (default: signing.key).'}),
    'public-key': Flags.string({
      description: 'Public key to verify with: a file or env://NAME (default: signing.publicKey).',
    }),
    force: Flags.boolean({
      description: "Build, push and sign even when the lock's runner was built from the same files and still verifies.",
      default: false,
    }),
  }

  async run(): Promise<RunnerBuildResult> {
    const project = await this.loadProject()
    const prompt = this.interactive
      ? async (message: string) => (await import('@inquirer/prompts')).password({message, mask: true})
      : undefined
    const result = await buildRunnerImage(
      {
        project,
        baseImage: this.flags['base-image'],
        key: this.flags.key,
        publicKey: this.flags['public-key'],
        passphrase: {env: project.config.signing.passwordEnv, prompt},
        force: this.flags.force,
      },
      this.ctx,
    )
    if (result.upToDate) {
      this.log(
        `Runner image ${result.image}\n  retailops ${result.version}, built from the same ${result.files} files (${result.tag}) and verified (key ${result.keyId.slice(0, 19)}…): nothing to build; --force rebuilds${pinnedLine(result)}`,
      )
      return result
    }
    this.log(
      `Runner image ${result.image}\n  retailops ${result.version}, ${result.files} files (${result.devPackagesExcluded} devDependencies left out), built with ${result.builder}\n  signed (key ${result.keyId.slice(0, 19)}…${result.signatureAdded ? '' : ', already signed'}) and verified; recorded as "runner" in ${result.lock}${pinnedLine(result)}`,
    )
    return result
  }
}

function pinnedLine(result: RunnerBuildResult): string {
  return result.pinned.length > 0 ? `\n  pinned in ${result.pinned.join(', ')} (commit it)` : ''
}
