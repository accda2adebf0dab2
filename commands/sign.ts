import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import type {SignImagesResult} from '../src/signing/images.js'
import {signAndAttest} from '../src/supplychain/sign.js'
import type {SignatureFormat} from '../src/signing/sign.js'
import {RetailOpsCommand} from './_base/base-command.js'

export default class Sign extends RetailOpsCommand<typeof Sign> {
  static override summary =
    'Sign pushed images with the cosign key (cosign v3 bundles as OCI referrers, or cosign v2 .sig tags).'
  static override description = [
    "Signs each service's digest from .retailops/artifacts.lock.json (or the given REGISTRY/REPO@sha256:… references) with ECDSA P-256,",
    "stored as cosign v3 does by default: a Sigstore bundle (DSSE in-toto statement) attached as an OCI 1.1 referrer (the registry's",
    'referrers API, or the tag sha256-<digest> where it has none). `--signature-format legacy` (or signing.format: legacy) writes',
    "cosign v2's layout at the tag sha256-<digest>.sig instead, for podman, CRI-O and older verifiers. The key passphrase comes from the variable named by signing.passwordEnv",
    '(default COSIGN_PASSWORD), or a prompt at a terminal. Exit code 6 for a wrong passphrase.',
    "With each service's signature it attaches that image's attestations, signed with the same key as in-toto statements (DSSE):",
    'the CycloneDX SBOM (cosign --type cyclonedx) and the SLSA provenance v1 (--type slsaprovenance1) that `retailops build` wrote,',
    "bound to the pushed digest; as Sigstore bundles among the image's referrers, or with --signature-format legacy as cosign v2's",
    'sha256-<digest>.att tag. `--no-attest` signs only. Exit code 4 when the SBOM or provenance belongs to another build than the pushed image.',
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
    'COSIGN_PASSWORD=… <%= config.bin %> <%= command.id %> checkout --json',
    '<%= config.bin %> <%= command.id %> 127.0.0.1:5000/shop/catalog@sha256:… --key cosign.key',
    'COSIGN_PRIVATE_KEY="$(cat cosign.key)" COSIGN_PASSWORD=… <%= config.bin %> <%= command.id %> --key env://COSIGN_PRIVATE_KEY --json',
    '<%= config.bin %> <%= command.id %> checkout --signature-format legacy',
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
        'Encrypted cosign private key: a file, or env://NAME for a variable holding its contents (default: signing.key in retailops.yaml).',
    }),
    attest: Flags.boolean({
      description:
        "Attach the SBOM and SLSA provenance attestations of each service's pushed image (--no-attest: the signature only).",
      default: true,
      allowNo: true,
    }),
    'signature-format': Flags.string({
      options: ['bundle', 'legacy'],
      description:
        "bundle (cosign v3's default: Sigstore bundle as an OCI referrer) or legacy (cosign v2's .sig tag). Default: signing.format in retailops.yaml, else bundle.",
    }),
  }

  async run(): Promise<SignImagesResult> {
    const project = await this.loadProject().catch((error: {exit?: string}) => {
      if (error.exit === 'NOT_FOUND' && this.flags.key) return undefined
      throw error
    })
    const passwordEnv = project?.config.signing.passwordEnv ?? 'COSIGN_PASSWORD'
    const prompt = this.interactive
      ? async (message: string) => (await import('@inquirer/prompts')).password({message, mask: true})
      : undefined
    const result = await signAndAttest(
      {
        attest: this.flags.attest,
        project,
        targets: this.positionals,
        key: this.flags.key,
        format: this.flags['signature-format'] as SignatureFormat | undefined,
        passphrase: {env: passwordEnv, prompt},
      },
      this.ctx,
    )
    for (const i of result.images) {
      this.log(
        `${i.added ? '✔ signed' : '= already signed'}  ${i.service ? `${i.service}  ` : ''}${i.image} → ${i.signature}`,
      )
      for (const a of i.attestations)
        this.log(`  ${a.added ? '✔ attested' : '= already attested'}  ${a.predicateType} → ${a.attestation}`)
    }
    return result
  }
}
