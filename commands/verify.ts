import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {verifyImages, type VerifyImagesResult} from '../src/signing/images.js'
import {RetailOpsCommand} from './_base/base-command.js'

export default class Verify extends RetailOpsCommand<typeof Verify> {
  static override summary = "Verify the images' cosign signatures with the public key."
  static override description = [
    "Checks each service's digest from .retailops/artifacts.lock.json (or the given REGISTRY/REPO@sha256:… references): Sigstore",
    "bundles among the image's OCI referrers (what cosign v3 writes; referrers API or the sha256-<digest> tag) and cosign v2's",
    'sha256-<digest>.sig signatures. Exit code 9 when an image is unsigned, signed by another key, has a changed payload, carries a',
    'signature for another digest, or a signature that names another repository; details.check in --json names which.',
    '--attestations also lists the attestations (SBOM, SLSA provenance, any other) that verify with the same key for that digest, and',
    'those refused with why; --require-attestation cyclonedx|slsaprovenance1|URI makes one mandatory (exit code 16 when it is missing,',
    'signed by another key, changed, or made for another digest or repository).',
  ].join(' ')
  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'SIGNATURE',
    'ATTESTATION',
  ] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> checkout --json',
    '<%= config.bin %> <%= command.id %> 127.0.0.1:5000/shop/catalog@sha256:… --key cosign.pub',
    '<%= config.bin %> <%= command.id %> checkout --attestations --json',
    '<%= config.bin %> <%= command.id %> --require-attestation cyclonedx --require-attestation slsaprovenance1',
  ]
  static override strict = false
  static override args = {
    target: Args.string({
      description: 'Services or REGISTRY/REPO@sha256:DIGEST references (default: every service in the lock).',
    }),
  }
  static override flags = {
    key: Flags.string({
      description:
        'Public key, PEM: a file, or env://NAME for a variable holding it (default: signing.publicKey in retailops.yaml).',
    }),
    attestations: Flags.boolean({
      description: 'Also verify and list the attestations attached to each image (SBOM, SLSA provenance, others).',
    }),
    'require-attestation': Flags.string({
      description:
        'An attestation each image must carry, verified with the key: cyclonedx, slsaprovenance1 or a predicate type URI (repeatable).',
      multiple: true,
    }),
  }

  async run(): Promise<VerifyImagesResult> {
    const project = await this.loadProject().catch((error: {exit?: string}) => {
      if (error.exit === 'NOT_FOUND' && this.flags.key) return undefined
      throw error
    })
    const result = await verifyImages(
      {
        project,
        targets: this.positionals,
        key: this.flags.key,
        attestations: this.flags.attestations,
        requireAttestations: this.flags['require-attestation'],
      },
      this.ctx,
    )
    this.log(`${result.images.length} image${result.images.length === 1 ? '' : 's'} verified with ${result.key}.`)
    return result
  }
}
