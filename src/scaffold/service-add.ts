import {existsSync} from 'node:fs'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {parseDocument, YAMLMap} from 'yaml'

import type {LoadedConfig} from '../config/load.js'
import {parseConfig} from '../config/parse.js'
import type {Tier} from '../config/schema.js'
import {SERVICE_NAME} from '../config/vocabulary.js'
import {RetailOpsError, UsageError} from '../errors/index.js'
import type {RunContext} from '../ui/context.js'
import {DEFAULT_SERVICE_PORT, serviceYaml} from './defaults.js'
import {readTemplate, renderTemplate} from '../assets/templates.js'

export interface AddServiceOptions {
  name: string
  tier: Tier
  port?: number
  rpsPerPod?: number
  force?: boolean
}

export interface AddServiceResult {
  service: string
  tier: Tier
  files: string[]
  config: string
}

/**
 * A service's image files from templates/service, by their name in services/<name>/: what
 * `service add` writes, and what the bundled services' files are generated from
 * (scripts/gen-dockerfiles.mjs, run by `npm run build`).
 */
export async function serviceImageFiles(
  name: string,
  port: number,
): Promise<Record<'Dockerfile' | 'Dockerfile.dockerignore', string>> {
  return {
    Dockerfile: renderTemplate(await readTemplate('service/Dockerfile.tmpl'), {name, port}),
    'Dockerfile.dockerignore': renderTemplate(await readTemplate('service/Dockerfile.dockerignore.tmpl'), {name}),
  }
}

/** A bundled job's image files: its Dockerfile (no port, it runs to completion) and the ignore file services use. */
export async function jobImageFiles(name: string): Promise<Record<'Dockerfile' | 'Dockerfile.dockerignore', string>> {
  return {
    Dockerfile: renderTemplate(await readTemplate('job/Dockerfile.tmpl'), {name}),
    'Dockerfile.dockerignore': renderTemplate(await readTemplate('service/Dockerfile.dockerignore.tmpl'), {name}),
  }
}

/** Adds a service from the skeleton and registers it in retailops.yaml, keeping the file's comments. */
export async function addService(
  project: LoadedConfig,
  options: AddServiceOptions,
  ctx: RunContext,
): Promise<AddServiceResult> {
  const {name, tier} = options
  if (!SERVICE_NAME.test(name) || name.length > 50) {
    throw new UsageError(`"${name}" is not a valid service name.`, {
      nextSteps: [
        'Use a DNS-1035 label such as "recommendations" (a lowercase letter first, then letters, digits and dashes; at most 50).',
      ],
    })
  }
  if (project.config.services[name] && !options.force) {
    throw new RetailOpsError('USAGE', `Service "${name}" already exists in ${project.file}.`, {
      nextSteps: ['Choose another name, or pass --force to re-create its files.'],
    })
  }
  const port = options.port ?? DEFAULT_SERVICE_PORT
  const servicesDir = path.join(project.dir, 'services')
  const files = new Map<string, string>([
    ...Object.entries(await serviceImageFiles(name, port)).map(
      ([file, text]) => [`${name}/${file}`, text] as [string, string],
    ),
    [`${name}/src/main.ts`, renderTemplate(await readTemplate('service/main.ts.tmpl'), {name})],
  ])
  const clashes = [...files.keys()].filter((f) => existsSync(path.join(servicesDir, f)))
  if (clashes.length > 0 && !options.force) {
    throw new RetailOpsError('USAGE', `services/${clashes.join(', services/')} already exist.`, {
      nextSteps: ['Pass --force to overwrite them.'],
    })
  }

  // Edit the YAML document in place so comments and ordering survive, then validate the result.
  const original = await readFile(project.file, 'utf8')
  const doc = parseDocument(original)
  const entry = parseDocument(
    `services:\n${serviceYaml({name, tier, rpsPerPod: options.rpsPerPod ?? 100, minReplicas: tier === 'revenue-critical' ? 3 : tier === 'operational' ? 2 : 1, maxReplicas: 10, dependsOn: [], latencyMs: 300}, port)}`,
  )
  const services = doc.get('services', true)
  if (!(services instanceof YAMLMap)) throw new UsageError(`${project.file} has no services mapping to add to.`)
  services.set(name, (entry.get('services', true) as YAMLMap).get(name, true))
  const updated = doc.toString()
  parseConfig(updated, project.file)

  for (const [relative, content] of files) {
    await mkdir(path.dirname(path.join(servicesDir, relative)), {recursive: true})
    await writeFile(path.join(servicesDir, relative), content)
  }
  await writeFile(project.file, updated)
  ctx.out.info(`Added ${name} (${tier}) to ${path.basename(project.file)}.`)
  return {service: name, tier, files: [...files.keys()].map((f) => `services/${f}`), config: project.file}
}
