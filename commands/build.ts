import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'

import {parseBuildArgs} from '../src/docker/build.js'
import {buildWithSupplyChain, type BuildWithSupplyChainResult} from '../src/supplychain/build.js'
import {makeChalk, renderTable} from '../src/ui/index.js'
import {RetailOpsCommand} from './_base/base-command.js'

export default class Build extends RetailOpsCommand<typeof Build> {
  static override summary =
    "Build the services' images through the Docker Engine (BuildKit where it works), in parallel, skipping unchanged ones."
  static override description = [
    'retailops makes each build context itself (honouring .dockerignore relative to the context), streams every step (shown with --verbose),',
    'and skips a service whose context files, Dockerfile and build arguments are unchanged since its last successful build.',
    'Tags are <config version>-<git commit>[-dirty]. Exit code 7 when a build fails; its failing step and output are shown.',
    'Each image built or found unchanged gets a CycloneDX SBOM at .retailops/sbom/<service>.cdx.json (its locked npm packages and its base image)',
    'and a SLSA provenance v1 predicate at .retailops/provenance/<service>.slsa.json (source commit, build parameters, base image digest, builder);',
    '`retailops sign` attests both for the pushed digest.',
  ].join(' ')
  static override exitCodes = [
    'OK',
    'USAGE',
    'CONFIG',
    'NOT_FOUND',
    'UNAVAILABLE',
    'PERMISSION',
    'BUILD_FAILED',
    'INTERRUPTED',
  ] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> checkout cart --concurrency 2',
    '<%= config.bin %> <%= command.id %> --base-image 127.0.0.1:5000/retailops/node-base:24 --build-arg NODE_ENV=production',
  ]
  static override strict = false
  static override args = {service: Args.string({description: 'Services to build (default: all).'})}
  static override flags = {
    concurrency: Flags.integer({
      description: 'Builds at once (default: the number of CPUs, at least 2).',
      min: 1,
      max: 32,
    }),
    'build-arg': Flags.string({
      description: 'Build argument KEY=VALUE (repeatable; overrides retailops.yaml).',
      multiple: true,
    }),
    'base-image': Flags.string({
      description: 'Value of the BASE_IMAGE build argument (the sandbox sets RETAILOPS_BASE_IMAGE).',
      env: 'RETAILOPS_BASE_IMAGE',
    }),
    builder: Flags.string({
      description: 'auto: BuildKit when the engine supports it and the base image is in a registry, else classic.',
      options: ['auto', 'buildkit', 'classic'],
      default: 'auto',
    }),
    force: Flags.boolean({description: 'Build even services that are unchanged since their last build.'}),
    'no-cache': Flags.boolean({description: "Do not use the engine's layer cache."}),
    pull: Flags.boolean({
      description:
        'Re-resolve every base image in its registry (Docker Hub names too), pull a newer one, and rebuild the services FROM it even if nothing else changed.',
    }),
    network: Flags.string({description: 'Network for RUN steps, as docker build --network (default, none, host).'}),
  }

  async run(): Promise<BuildWithSupplyChainResult> {
    const project = await this.loadProject()
    const result = await buildWithSupplyChain(
      {
        project,
        services: this.positionals,
        concurrency: this.flags.concurrency,
        buildArgs: parseBuildArgs(this.flags['build-arg']),
        baseImage: this.flags['base-image'],
        builder: this.flags.builder as 'auto' | 'buildkit' | 'classic',
        force: this.flags.force,
        noCache: this.flags['no-cache'],
        pull: this.flags.pull,
        network: this.flags.network,
      },
      this.ctx,
    )
    const c = makeChalk()
    const mark = {built: c.green('built'), skipped: c.dim('unchanged'), failed: c.red('FAILED')}
    this.log(
      renderTable(result.services, [
        {header: 'SERVICE', value: (r) => r.service},
        {header: 'STATUS', value: (r) => mark[r.status]},
        {header: 'IMAGE', value: (r) => r.image},
        {header: 'BUILDER', value: (r) => r.builder},
        {header: 'TIME', value: (r) => `${(r.durationMs / 1000).toFixed(1)}s`, align: 'right'},
      ]),
    )
    for (const r of result.services.filter((x) => x.status === 'built' && x.reason))
      this.log(`${r.service}: ${r.reason}`)
    for (const failed of result.services.filter((r) => r.status === 'failed')) {
      this.log(
        `\n${c.red(`✖ ${failed.service}`)}${failed.failure?.step ? ` failed at ${c.bold(failed.failure.step)}` : ''}:`,
      )
      for (const line of failed.failure?.output ?? []) this.log(c.dim(`  │ ${line}`))
      this.log(`  ${failed.reason}`)
    }
    for (const s of result.sboms.filter((x) => x.written))
      this.log(c.dim(`${s.service}: SBOM ${s.file} (${s.components} components)`))
    for (const p of result.provenance.filter((x) => x.written)) this.log(c.dim(`${p.service}: provenance ${p.file}`))
    this.log(
      `\n${result.built.length} built, ${result.skipped.length} unchanged, ${result.failed.length} failed in ${(result.durationMs / 1000).toFixed(1)}s.`,
    )
    if (result.failed.length > 0) this.setOutcome('BUILD_FAILED')
    return result
  }
}
