import {existsSync} from 'node:fs'
import {cp, mkdir, readdir, readFile, stat, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {parseConfig} from '../config/parse.js'
import {isLoopbackHost} from '../config/loopback.js'
import {jsonSchema} from '../config/schema.js'
import {parseReference} from '../docker/reference.js'
import {NotFoundError, RetailOpsError, UsageError} from '../errors/index.js'
import type {RunContext} from '../ui/context.js'
import {BUNDLED_JOBS, BUNDLED_NAMES, BUNDLED_SERVICES, jobYaml, serviceYaml} from './defaults.js'
import {packagePath} from '../assets/paths.js'
import {readTemplate, renderTemplate, yamlString} from '../assets/templates.js'

export type CiProvider = 'github' | 'gitlab' | 'none'

export interface InitOptions {
  directory: string
  project: string
  registry: string
  registryInsecure?: boolean
  context: string
  namespace?: string
  prometheus?: string
  services?: string[]
  ci?: CiProvider
  /** The retailops runner image the GitLab jobs run, REGISTRY/REPOSITORY@sha256:… (else `retailops runner build` pins it later). */
  runnerImage?: string
  /** Overwrite files that already exist. */
  force?: boolean
  now?: Date
}

export interface InitResult {
  directory: string
  project: string
  services: string[]
  files: string[]
  overwritten: string[]
  nextSteps: string[]
}

/** The next Black Friday (the day after the fourth Thursday of November) that has not ended. */
export function nextBlackFriday(now: Date): {start: Date; end: Date} {
  for (let year = now.getUTCFullYear(); ; year++) {
    const first = new Date(Date.UTC(year, 10, 1))
    const thursday = 1 + ((4 - first.getUTCDay() + 7) % 7) + 21
    const start = new Date(Date.UTC(year, 10, thursday + 1))
    const end = new Date(start.getTime() + 4 * 86_400_000 - 1000) // through Cyber Monday
    if (end > now) return {start, end}
  }
}

const iso = (d: Date) => d.toISOString().replace('.000Z', 'Z')

/** Writes a working project; everything is checked and rendered before the first file is written. */
export async function initProject(options: InitOptions, ctx: RunContext): Promise<InitResult> {
  const directory = path.resolve(options.directory)
  const services = options.services?.length ? options.services : BUNDLED_NAMES
  const unknown = services.filter((s) => !BUNDLED_NAMES.includes(s))
  if (unknown.length > 0) {
    throw new NotFoundError(`Not a bundled service: ${unknown.join(', ')}.`, {
      nextSteps: [
        `Bundled services: ${BUNDLED_NAMES.join(', ')}. Add your own later with \`retailops service add NAME\`.`,
      ],
    })
  }
  const chosen = BUNDLED_SERVICES.filter((s) => services.includes(s.name))
  const jobs = BUNDLED_JOBS.filter((j) => j.dependsOn.every((d) => services.includes(d)))
  for (const s of chosen) {
    const missing = s.dependsOn.filter((d) => !services.includes(d))
    if (missing.length > 0) {
      throw new UsageError(
        `${s.name} depends on ${missing.join(', ')}, which ${missing.length > 1 ? 'are' : 'is'} not selected.`,
        {
          nextSteps: [`Add ${missing.join(', ')} to --services, or leave ${s.name} out.`],
        },
      )
    }
  }

  const ci = options.ci ?? 'github'
  if (options.runnerImage !== undefined) {
    if (ci !== 'gitlab') {
      throw new UsageError(
        `--runner-image is for the GitLab pipeline, whose jobs run in the runner image; --ci ${ci} does not use it.`,
        {nextSteps: ['Pass --ci gitlab, or leave --runner-image out.']},
      )
    }
    if (!parseReference(options.runnerImage).digest) {
      throw new UsageError(
        `--runner-image ${options.runnerImage}: the pipeline runs the runner image pinned by digest, REGISTRY/REPOSITORY@sha256:…, never a tag (a tag can point at other bytes on the next push).`,
        {
          nextSteps: [
            'Pass the image `retailops runner build` printed, or leave the flag out and run `retailops runner build` in the project afterwards: it pins the digest in .gitlab-ci.yml.',
          ],
        },
      )
    }
  }

  const now = options.now ?? new Date()
  const campaign = nextBlackFriday(now)
  const files = new Map<string, string>()
  const yaml = renderTemplate(await readTemplate('project/retailops.yaml.tmpl'), {
    // Flag values are quoted: never trusted to be plain YAML scalars.
    project: yamlString(options.project),
    registry: yamlString(options.registry),
    registryInsecure: options.registryInsecure ?? isLoopbackHost(options.registry),
    context: yamlString(options.context),
    namespace: yamlString(options.namespace ?? options.project),
    prometheus: yamlString(options.prometheus ?? 'http://127.0.0.1:9090'),
    services: chosen.map((s) => serviceYaml({...s, synthetic: true})).join(''),
    jobs: jobs.length
      ? `\n# Batch jobs (docs/jobs.md): built, signed and deployed like services; \`retailops jobs run NAME\`.\njobs:\n${jobs.map(jobYaml).join('')}`
      : '',
    // Campaign peaks: eight times a pod's capacity is a plausible Black Friday for a new project.
    peaks: chosen.map((s) => `      ${s.name}: {rps: ${s.rpsPerPod * 8}}`).join('\n'),
    campaignStart: iso(campaign.start),
    campaignEnd: iso(campaign.end),
  })
  // The project's own file must be valid: a scaffold that fails `config validate` is a bug.
  parseConfig(yaml, path.join(directory, 'retailops.yaml'))
  files.set('retailops.yaml', yaml)
  files.set('retailops.schema.json', `${JSON.stringify(jsonSchema(), null, 2)}\n`)
  files.set('k6/smoke.js', renderTemplate(await readTemplate('k6/smoke.js.tmpl'), {project: options.project}))
  files.set('overlays/README.md', await readTemplate('overlays/README.md.tmpl'))
  const version = await cliVersion()
  // These land in comments at the top of the pipeline: a line break must not end the comment.
  const oneLine = (v: string) => v.replace(/[\r\n]+/g, ' ')
  const ciValues = {version, registry: oneLine(options.registry), context: oneLine(options.context)}
  if (ci === 'github')
    files.set(
      '.github/workflows/release.yml',
      renderTemplate(await readTemplate('ci/github-actions.yml.tmpl'), ciValues),
    )
  if (ci === 'gitlab') {
    const runner = options.runnerImage
      ? {runnerImage: options.runnerImage, runnerVersion: 'given to retailops init'}
      : {
          runnerImage: yamlString('run `retailops runner build` to pin the runner image here'),
          runnerVersion: 'not pinned yet',
        }
    files.set('.gitlab-ci.yml', renderTemplate(await readTemplate('ci/gitlab-ci.yml.tmpl'), {...ciValues, ...runner}))
  }
  const ciSection = {
    github: 'The GitHub Actions workflow `.github/workflows/release.yml` runs on every push to main.',
    gitlab: [
      'The GitLab pipeline `.gitlab-ci.yml` runs on every push to the default branch: the build job passes the artifacts lock to the release job as an artifact.',
      'Its jobs run the retailops runner image, pinned by digest: run `retailops runner build` once (and again after upgrading retailops), which builds, pushes and signs it and pins it in `.gitlab-ci.yml`; commit that file.',
      'If the GitLab runner needs credentials to pull from the registry, give it the CI/CD variable `DOCKER_AUTH_CONFIG` (see the top of `.gitlab-ci.yml`).',
    ].join(' '),
    none: 'No pipeline was scaffolded (`retailops init --ci github` or `--ci gitlab` writes one); these are the secrets one needs.',
  }[ci]
  const readme = renderTemplate(await readTemplate('project/README.md.tmpl'), {
    ...ciValues,
    project: options.project,
    ciSection,
  })
  files.set(
    '.gitignore',
    `node_modules/\n.retailops/*.key\n.retailops/state/\n.retailops/build-state.json\n${ci === 'gitlab' ? '.npm/\n' : ''}`,
  )

  const copies = [
    'lib',
    'package.json',
    'package-lock.json',
    '.dockerignore',
    'README.md',
    ...services,
    ...jobs.map((j) => j.name),
  ]
    .filter((entry) => existsSync(packagePath('services', entry)))
    .map((entry) => `services/${entry}`)

  // A project's own README is never replaced without --force: the CI secrets are also at the top of the pipeline.
  const keepReadme = existsSync(path.join(directory, 'README.md')) && !options.force
  if (keepReadme)
    ctx.out.warn(
      `${path.join(directory, 'README.md')} exists and was kept; the pipeline's secrets are documented at the top of the pipeline file.`,
    )
  else files.set('README.md', readme)

  const targets = [...files.keys(), ...copies]
  const existing = targets.filter((t) => existsSync(path.join(directory, t)))
  if (existing.length > 0 && !options.force) {
    throw new RetailOpsError('USAGE', `${directory} already has ${existing.join(', ')}.`, {
      nextSteps: ['Pass --force to overwrite them, or choose another --directory.'],
      details: {existing},
    })
  }
  if (existsSync(directory) && !(await stat(directory)).isDirectory()) {
    throw new UsageError(`${directory} exists and is not a folder.`, {nextSteps: ['Choose another --directory.']})
  }

  const task = ctx.out.task(`Scaffolding ${options.project} in ${directory}`)
  for (const [relative, content] of files) {
    await mkdir(path.dirname(path.join(directory, relative)), {recursive: true})
    await writeFile(path.join(directory, relative), content)
  }
  for (const relative of copies) {
    await cp(packagePath(relative), path.join(directory, relative), {
      recursive: true,
      force: true,
      filter: (src) =>
        !/(^|\/)(node_modules|coverage|dist)(\/|$)|\.test\.ts$/.test(path.relative(packagePath('services'), src)),
    })
  }
  const written = [...files.keys(), ...(await listFiles(directory, copies))]
  task.succeed(`Scaffolded ${options.project}: ${services.length} services, ${written.length} files`)
  return {
    directory,
    project: options.project,
    services,
    files: written.sort(),
    overwritten: existing,
    nextSteps: [
      `cd ${relativeOrAbsolute(directory)}`,
      '(cd services && npm ci)',
      'retailops doctor',
      'retailops keys generate',
      ...(ci === 'gitlab' && !options.runnerImage
        ? ['retailops runner build   # the image the GitLab jobs run; it pins its digest in .gitlab-ci.yml: commit it']
        : []),
      'retailops build && retailops push && retailops sign',
      'retailops deploy --canary',
    ],
  }
}

async function listFiles(root: string, relatives: string[]): Promise<string[]> {
  const out: string[] = []
  for (const rel of relatives) {
    const full = path.join(root, rel)
    if (!(await stat(full)).isDirectory()) {
      out.push(rel)
      continue
    }
    const entries = await readdir(full, {recursive: true, withFileTypes: true})
    for (const e of entries) if (e.isFile()) out.push(path.relative(root, path.join(e.parentPath, e.name)))
  }
  return out
}

/** The version of this CLI: scaffolded pipelines install exactly it. */
export async function cliVersion(): Promise<string> {
  return (JSON.parse(await readFile(packagePath('package.json'), 'utf8')) as {version: string}).version
}

function relativeOrAbsolute(directory: string): string {
  const relative = path.relative(process.cwd(), directory)
  return relative === '' ? '.' : relative.startsWith('..') ? directory : relative
}
