// Runs the pipelines `retailops init` writes the way their CI systems do, step by step, on this
// machine against the sandbox. Nothing here knows what the pipeline's steps are: they are read
// from the scaffolded file. What a hosted runner provides is stood in for, and only that:
//   GitHub  actions/checkout     → the job runs in a fresh `git clone` of the pushed commit
//           actions/setup-node   → the local Node 24 (the node-version the step asks for is checked)
//           `run:`               → bash -e -o pipefail, the job's env with ${{ secrets.X }} and ${{ github.sha }} substituted
//   GitLab  image: node:24       → the local Node 24 (checked)
//           services: docker:dind → the sandbox's Docker Engine (DOCKER_HOST)
//           each job             → a fresh clone; artifacts of earlier stages' jobs copied in as declared
//           before_script+script → each line with bash -e -o pipefail, global and job variables plus the CI/CD variables
// and one substitution, documented where it happens: retailops is not published to npm here, so the
// install step's package spec `retailops@<pinned version>` becomes the tarball `npm pack` made of
// this repository (the pinned version is checked to be this CLI's version first).
import {existsSync} from 'node:fs'
import {cp, mkdir, mkdtemp} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {execa} from 'execa'
import {parse} from 'yaml'

export interface StepResult {
  name: string
  exitCode: number
  ms: number
  /** stdout and stderr interleaved, as the CI log shows them. */
  output: string
  stdout: string
}

export class StepFailed extends Error {
  constructor(
    readonly step: string,
    readonly exitCode: number,
    readonly output: string,
  ) {
    super(`pipeline step "${step}" failed with exit code ${exitCode}:\n${output.split('\n').slice(-60).join('\n')}`)
  }
}

export interface RunnerOptions {
  /** The pushed repository (a git folder); every job clones it fresh. */
  origin: string
  /** CI secrets by name: the only values the pipeline gets from outside the repository. */
  secrets: Record<string, string>
  /** What the runner machine itself provides: PATH with Node 24, HOME, the npm cache, Docker. */
  runnerEnv: Record<string, string>
  /** `npm pack` of this repository, installed in place of `retailops@<version>`. */
  tarball: string
  /** The version the pipeline must pin (this CLI's). */
  version: string
  /** Node major version the runner provides. */
  nodeMajor: number
  /** Called before each step (e.g. to start load when the release step begins). */
  onStep?: (name: string, cwd: string) => void | Promise<void>
}

async function clone(origin: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 't-ci-job-'))
  await execa('git', ['clone', '--quiet', origin, dir])
  return dir
}

/** The install step's package spec pinned to the scaffolding version, swapped for the local tarball. */
export function substituteInstall(script: string, options: Pick<RunnerOptions, 'tarball' | 'version'>, env: Record<string, string>): string {
  const spec = /"retailops@\$\{RETAILOPS_VERSION\}"|retailops@\$\{?RETAILOPS_VERSION\}?|retailops@([0-9][^\s"']*)/.exec(script)
  if (!spec) return script
  const pinned = spec[1] ?? env.RETAILOPS_VERSION
  if (pinned !== options.version) throw new Error(`the pipeline installs retailops@${pinned}, not the version that scaffolded it (${options.version})`)
  return script.replace(spec[0], JSON.stringify(options.tarball))
}

async function runStep(name: string, script: string, cwd: string, env: Record<string, string>, results: StepResult[]): Promise<void> {
  const started = Date.now()
  const r = await execa('bash', ['--noprofile', '--norc', '-e', '-o', 'pipefail', '-c', script], {cwd, env, extendEnv: false, reject: false, all: true, stdin: 'ignore'})
  results.push({name, exitCode: r.exitCode ?? -1, ms: Date.now() - started, output: r.all ?? '', stdout: r.stdout})
  if (r.exitCode !== 0) throw new StepFailed(name, r.exitCode ?? -1, r.all ?? '')
}

/** `${{ secrets.X }}` and `${{ github.sha }}`; any other expression is a pipeline this runner cannot honestly run. */
function expression(value: string, secrets: Record<string, string>, sha: string): string {
  return value.replace(/\$\{\{\s*([^}]+?)\s*\}\}/g, (_, expr: string) => {
    const secret = /^secrets\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(expr)
    if (secret) {
      if (!(secret[1] in secrets)) throw new Error(`the workflow reads secrets.${secret[1]}, which is not one of the documented secrets`)
      return secrets[secret[1]]
    }
    if (expr === 'github.sha') return sha
    throw new Error(`the workflow uses the expression \${{ ${expr} }}, which this runner does not provide`)
  })
}

interface GithubWorkflow {
  jobs: Record<string, {env?: Record<string, string>; steps: {name?: string; uses?: string; run?: string; with?: Record<string, unknown>; env?: Record<string, string>}[]}>
}

/** Runs every job of a GitHub Actions workflow, in file order, in a fresh clone each. */
export async function runGithubWorkflow(file: string, text: string, options: RunnerOptions): Promise<StepResult[]> {
  const workflow = parse(text) as GithubWorkflow
  const results: StepResult[] = []
  for (const [jobName, job] of Object.entries(workflow.jobs)) {
    const dir = await clone(options.origin)
    const sha = (await execa('git', ['rev-parse', 'HEAD'], {cwd: dir})).stdout.trim()
    const jobEnv = Object.fromEntries(Object.entries(job.env ?? {}).map(([k, v]) => [k, expression(String(v), options.secrets, sha)]))
    for (const [i, step] of job.steps.entries()) {
      const name = `${file} ${jobName} step ${i + 1}: ${[step.name, step.uses ?? step.run?.trim()].filter(Boolean).join(' | ')}`
      await options.onStep?.(name, dir)
      if (step.uses) {
        const action = step.uses.replace(/@.*$/, '')
        if (action === 'actions/checkout') {
          results.push({name, exitCode: 0, ms: 0, output: `cloned ${sha}`, stdout: ''})
        } else if (action === 'actions/setup-node') {
          const wanted = Number(step.with?.['node-version'])
          if (wanted !== options.nodeMajor) throw new StepFailed(name, 1, `asks for Node ${String(step.with?.['node-version'])}; the runner has Node ${options.nodeMajor}`)
          results.push({name, exitCode: 0, ms: 0, output: `node ${options.nodeMajor}`, stdout: ''})
        } else {
          throw new StepFailed(name, 1, `uses ${step.uses}: only actions/checkout and actions/setup-node are allowed`)
        }
        continue
      }
      const env = {...options.runnerEnv, ...jobEnv, ...Object.fromEntries(Object.entries(step.env ?? {}).map(([k, v]) => [k, expression(String(v), options.secrets, sha)]))}
      await runStep(name, substituteInstall(expression(step.run ?? '', options.secrets, sha), options, env), dir, env, results)
    }
  }
  return results
}

const GITLAB_RESERVED = new Set(['stages', 'variables', 'default', 'workflow', 'include', 'image', 'services', 'before_script', 'after_script', 'cache'])

interface GitlabJob {
  stage?: string
  image?: string
  services?: (string | {name: string; alias?: string})[]
  variables?: Record<string, string>
  before_script?: string[]
  script: string[]
  needs?: (string | {job: string; artifacts?: boolean})[]
  artifacts?: {paths?: string[]}
}

/**
 * Runs a GitLab pipeline: jobs in stage order, each in a fresh clone with the artifacts of the
 * earlier stages' jobs it needs (all earlier jobs when `needs` is absent) copied in.
 */
export async function runGitlabPipeline(file: string, text: string, options: RunnerOptions): Promise<StepResult[]> {
  const doc = parse(text) as Record<string, unknown> & {stages?: string[]; variables?: Record<string, string>; default?: Partial<GitlabJob>}
  const stages = doc.stages ?? ['build', 'test', 'deploy']
  const jobs = Object.entries(doc)
    .filter(([k]) => !GITLAB_RESERVED.has(k) && !k.startsWith('.'))
    .map(([name, job]) => ({name, job: job as GitlabJob}))
  for (const j of jobs) if (!stages.includes(j.job.stage ?? 'test')) throw new Error(`job ${j.name} is in stage ${j.job.stage}, which stages does not list`)
  jobs.sort((a, b) => stages.indexOf(a.job.stage ?? 'test') - stages.indexOf(b.job.stage ?? 'test'))
  const results: StepResult[] = []
  const finished = new Map<string, {dir: string; paths: string[]}>()
  for (const {name, job} of jobs) {
    const dir = await clone(options.origin)
    const sha = (await execa('git', ['rev-parse', 'HEAD'], {cwd: dir})).stdout.trim()
    const needs = job.needs?.map((n) => (typeof n === 'string' ? {job: n, artifacts: true} : {artifacts: true, ...n}))
    const sources = needs ? needs.filter((n) => n.artifacts).map((n) => n.job) : [...finished.keys()]
    for (const source of sources) {
      const from = finished.get(source)
      if (!from) throw new Error(`job ${name} needs ${source}, which has not run`)
      for (const p of from.paths) {
        await mkdir(path.dirname(path.join(dir, p)), {recursive: true})
        await cp(path.join(from.dir, p), path.join(dir, p), {recursive: true})
      }
    }
    const image = job.image ?? doc.default?.image ?? (doc.image as string | undefined)
    if (image !== `node:${options.nodeMajor}`) throw new Error(`job ${name} runs in ${image}; the runner provides node:${options.nodeMajor}`)
    const services = job.services ?? doc.default?.services ?? (doc.services as GitlabJob['services']) ?? []
    const dind = services.some((s) => /^docker:[\w.-]*dind$/.test(typeof s === 'string' ? s : s.name))
    const variables = {...doc.variables, ...job.variables}
    // The runner's docker:dind service is the sandbox's Docker Engine.
    const env: Record<string, string> = {...options.runnerEnv, ...variables, ...options.secrets, CI_COMMIT_SHA: sha, CI_JOB_NAME: name}
    if (dind) env.DOCKER_HOST = options.runnerEnv.DOCKER_HOST
    else delete env.DOCKER_HOST
    const lines = [...(job.before_script ?? doc.default?.before_script ?? []), ...job.script]
    for (const [i, line] of lines.entries()) {
      const stepName = `${file} ${name}: ${line} (line ${i + 1})`
      await options.onStep?.(stepName, dir)
      await runStep(stepName, substituteInstall(line, options, env), dir, env, results)
    }
    for (const p of job.artifacts?.paths ?? []) {
      if (!existsSync(path.join(dir, p))) throw new StepFailed(`${file} ${name}: artifacts`, 1, `the job declares the artifact ${p}, which it did not produce`)
    }
    finished.set(name, {dir, paths: job.artifacts?.paths ?? []})
  }
  return results
}
