import * as Flags from '@oclif/core/flags'

import {BUNDLED_NAMES} from '../src/scaffold/defaults.js'
import {type CiProvider, initProject, type InitResult} from '../src/scaffold/init.js'
import {RetailOpsCommand} from './_base/base-command.js'

export default class Init extends RetailOpsCommand<typeof Init> {
  static override summary =
    'Scaffold a retailops project: configuration, services, overlays, k6 scripts and a CI pipeline.'
  static override description =
    'Prompts for anything not given as a flag when run at a terminal. It never prompts without a terminal, in CI or under --json: then it lists the flags it would have asked for (exit 2), and --yes takes the defaults shown in --help.'
  static override exitCodes = ['OK', 'USAGE', 'CONFIG', 'NOT_FOUND'] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --project shop --registry 127.0.0.1:5000 --context kwok-retailops --yes',
    '<%= config.bin %> <%= command.id %> --directory shop --services catalog,cart --ci gitlab --yes',
    '<%= config.bin %> <%= command.id %> --ci gitlab --runner-image 127.0.0.1:5000/shop/retailops-runner@sha256:… --yes',
  ]
  static override flags = {
    directory: Flags.string({char: 'd', description: 'Where to create the project.', default: '.'}),
    project: Flags.string({
      description: 'Project name (a DNS label): prefixes images, namespaces and labels. Default: the folder name.',
    }),
    registry: Flags.string({description: 'OCI registry host[:port].', default: '127.0.0.1:5000'}),
    'kube-context': Flags.string({description: 'kube context of the main cluster.', default: 'kwok-retailops'}),
    'target-namespace': Flags.string({description: 'Namespace the services run in. Default: the project name.'}),
    prometheus: Flags.string({description: 'Prometheus URL.', default: 'http://127.0.0.1:9090'}),
    services: Flags.string({
      description: `Bundled services to include (comma-separated): ${BUNDLED_NAMES.join(', ')}.`,
      delimiter: ',',
      multiple: true,
    }),
    ci: Flags.string({
      description: 'CI pipeline file to write.',
      options: ['github', 'gitlab', 'none'],
      default: 'github',
    }),
    'runner-image': Flags.string({
      description:
        'With --ci gitlab: the retailops runner image its jobs run, REGISTRY/REPOSITORY@sha256:… (never a tag). Default: `retailops runner build` pins it later.',
    }),
    force: Flags.boolean({description: 'Overwrite files that already exist.'}),
  }

  async run(): Promise<InitResult> {
    const f = this.flags
    const path = await import('node:path')
    let project =
      f.project ??
      path
        .basename(path.resolve(f.directory))
        .toLowerCase()
        .replace(/[^a-z0-9-]/g, '-')
    let services = f.services
    let registry = f.registry
    if (!this.interactive && !f.yes) {
      // Nobody to ask: name what would have been asked, rather than guess (--yes takes the defaults).
      this.requireFlags([
        ...(f.project ? [] : [{flag: 'project', description: `project name (a DNS label); --yes uses "${project}"`}]),
        ...(f.services
          ? []
          : [{flag: 'services', description: `comma-separated services; --yes takes all: ${BUNDLED_NAMES.join(',')}`}]),
      ])
    }
    if (this.interactive) {
      const {input, checkbox} = await import('@inquirer/prompts')
      if (!f.project) project = await input({message: 'Project name', default: project})
      if (!f.services) {
        services = await checkbox({
          message: 'Services',
          choices: BUNDLED_NAMES.map((value) => ({value, checked: true})),
        })
      }
      registry = await input({message: 'Registry', default: registry})
    }
    const result = await initProject(
      {
        directory: f.directory,
        project,
        registry,
        context: f['kube-context'],
        namespace: f['target-namespace'],
        prometheus: f.prometheus,
        services,
        ci: f.ci as CiProvider,
        runnerImage: f['runner-image'],
        force: f.force,
      },
      this.ctx,
    )
    this.log(`\nCreated ${result.files.length} files in ${result.directory}. Next:`)
    for (const step of result.nextSteps) this.log(`  ${step}`)
    return result
  }
}
