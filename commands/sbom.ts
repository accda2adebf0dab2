import * as Args from '@oclif/core/args'

import {readSboms, type SbomSummary} from '../src/supplychain/sbom.js'
import {renderTable} from '../src/ui/index.js'
import {RetailOpsCommand} from './_base/base-command.js'

export default class Sbom extends RetailOpsCommand<typeof Sbom> {
  static override summary = "Show the services' CycloneDX SBOMs (written by build), bound to their pushed digests."
  static override description = [
    '`retailops build` writes a CycloneDX 1.6 SBOM per image at .retailops/sbom/<service>.cdx.json: the npm packages its',
    "build context's package-lock.json installs (dev dependencies excluded, as `npm ci --omit=dev` does), each with its purl and",
    "the lock's integrity hash, the base image with its digest, and the image itself as metadata.component. Once a service is pushed,",
    'this binds its SBOM to the pushed digest (what `retailops sign` attests). Exit code 4 when a service has no SBOM or its SBOM',
    'describes another image than the pushed one (build and push again).',
  ].join(' ')
  static override exitCodes = ['OK', 'USAGE', 'CONFIG', 'NOT_FOUND'] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> checkout --json',
  ]
  static override strict = false
  static override args = {service: Args.string({description: 'Services (default: all).'})}

  async run(): Promise<{sboms: SbomSummary[]}> {
    const project = await this.loadProject()
    const sboms = await readSboms(project, this.positionals)
    this.log(
      renderTable(sboms, [
        {header: 'SERVICE', value: (s) => s.service},
        {header: 'IMAGE', value: (s) => s.image},
        {header: 'PACKAGES', value: (s) => String(s.packages), align: 'right'},
        {header: 'BASE', value: (s) => s.baseImages.map((b) => `${b.name}@${b.version ?? '?'}`).join(', ')},
        {header: 'FILE', value: (s) => s.file},
      ]),
    )
    return {sboms}
  }
}
