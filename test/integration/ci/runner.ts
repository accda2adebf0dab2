// Runs the pipelines `retailops init` writes the way their CI systems do, step by step, on this
// machine against the sandbox. Nothing here knows what the pipeline's steps are: they are read
// from the scaffolded file. What a hosted runner provides is stood in for, and only that:
//   GitHub  actions/checkout     → the job runs in a fresh `git clone` of the pushed commit
//           actions/setup-node   → the local Node 24 (the node-version the step asks for is checked)
//           GITHUB_* variables   → the default ones a hosted runner sets (GITHUB_ACTIONS, GITHUB_SHA,
//                                  GITHUB_REF, GITHUB_REPOSITORY, GITHUB_API_URL); the API URL is the
//                                  test's own server on 127.0.0.1, since GitHub is not reachable here
//           ${{ github.token }}  → the token the test gives (that server checks it)
//           `if:`                → a failed step stops the job, so only conditions that hold on a
//                                  green run are accepted (!cancelled(), always(), success())
//           `run:`               → bash -e -o pipefail, the job's env with ${{ secrets.X }}, ${{ github.sha }} and ${{ github.token }} substituted
//   GitLab  (the Docker executor) each job runs in a container of the job's `image:`, which must be
//           pinned by digest: pulled from the registry as the GitLab runner pulls it (with
//           DOCKER_AUTH_CONFIG when that variable is set), entrypoint as the file says, the user
//           the image declares, --network host (the sandbox is on loopback);
//           each job             → a fresh clone, world-writable as GitLab's umask 0000 leaves it,
//                                  mounted as the job's working directory /builds/<project>; artifacts of
//                                  earlier stages' jobs copied in as declared; `cache:` paths restored
//                                  from the runner's cache (seeded with this machine's npm cache)
//           services: docker:dind → the sandbox's Docker Engine: its socket mounted, DOCKER_HOST pointing at it
//           before_script+script → each line with sh -e in that container (`docker exec`), global and job
//                                  variables plus the CI/CD variables and CI_* as the environment
// and, for GitHub only, one substitution, documented where it happens: retailops is not published
// to npm here, so the install step's package spec `retailops@<pinned version>` becomes the tarball
// `npm pack` made of this repository (the pinned version is checked to be this CLI's version first).
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {chmod, cp, mkdir, mkdtemp, readdir, rm, stat, writeFile} from 'node:fs/promises'
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
  /** GitHub: what the hosted runner's context provides: its API (here a server on 127.0.0.1), the repository, the ref and the job's token. */
  github?: {apiUrl: string; repository: string; ref: string; token: string}
  /** GitLab: the runner's cache folder per cache path (what `cache:` restores before a job and saves after it). */
  gitlabCache?: string
}

async function clone(origin: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 't-ci-job-'))
  await execa('git', ['clone', '--quiet', origin, dir])
  return dir
}

/** The install step's package spec pinned to the scaffolding version, swapped for the local tarball. */
export function substituteInstall(
  script: string,
  options: Pick<RunnerOptions, 'tarball' | 'version'>,
  env: Record<string, string>,
): string {
  const spec = /"retailops@\$\{RETAILOPS_VERSION\}"|retailops@\$\{?RETAILOPS_VERSION\}?|retailops@([0-9][^\s"']*)/.exec(
    script,
  )
  if (!spec) return script
  const pinned = spec[1] ?? env.RETAILOPS_VERSION
  if (pinned !== options.version)
    throw new Error(
      `the pipeline installs retailops@${pinned}, not the version that scaffolded it (${options.version})`,
    )
  return script.replace(spec[0], JSON.stringify(options.tarball))
}

async function runStep(
  name: string,
  script: string,
  cwd: string,
  env: Record<string, string>,
  results: StepResult[],
): Promise<void> {
  const started = Date.now()
  const r = await execa('bash', ['--noprofile', '--norc', '-e', '-o', 'pipefail', '-c', script], {
    cwd,
    env,
    extendEnv: false,
    reject: false,
    all: true,
    stdin: 'ignore',
  })
  results.push({name, exitCode: r.exitCode ?? -1, ms: Date.now() - started, output: r.all ?? '', stdout: r.stdout})
  if (r.exitCode !== 0) throw new StepFailed(name, r.exitCode ?? -1, r.all ?? '')
}

/** `${{ secrets.X }}`, `${{ github.sha }}` and `${{ github.token }}`; any other expression is a pipeline this runner cannot honestly run. */
function expression(value: string, secrets: Record<string, string>, sha: string, token?: string): string {
  return value.replace(/\$\{\{\s*([^}]+?)\s*\}\}/g, (_, expr: string) => {
    const secret = /^secrets\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(expr)
    if (secret) {
      if (!(secret[1] in secrets))
        throw new Error(`the workflow reads secrets.${secret[1]}, which is not one of the documented secrets`)
      return secrets[secret[1]]
    }
    if (expr === 'github.sha') return sha
    if (expr === 'github.token' && token !== undefined) return token
    throw new Error(`the workflow uses the expression \${{ ${expr} }}, which this runner does not provide`)
  })
}

interface GithubWorkflow {
  jobs: Record<
    string,
    {
      env?: Record<string, string>
      steps: {
        name?: string
        uses?: string
        if?: string
        run?: string
        with?: Record<string, unknown>
        env?: Record<string, string>
      }[]
    }
  >
}

const GREEN_RUN_CONDITIONS = /^\s*(\$\{\{\s*)?(!\s*cancelled\(\)|always\(\)|success\(\))(\s*\}\})?\s*$/

/** Runs every job of a GitHub Actions workflow, in file order, in a fresh clone each. */
export async function runGithubWorkflow(file: string, text: string, options: RunnerOptions): Promise<StepResult[]> {
  const workflow = parse(text) as GithubWorkflow
  const results: StepResult[] = []
  for (const [jobName, job] of Object.entries(workflow.jobs)) {
    const dir = await clone(options.origin)
    const sha = (await execa('git', ['rev-parse', 'HEAD'], {cwd: dir})).stdout.trim()
    const jobEnv = Object.fromEntries(
      Object.entries(job.env ?? {}).map(([k, v]) => [
        k,
        expression(String(v), options.secrets, sha, options.github?.token),
      ]),
    )
    for (const [i, step] of job.steps.entries()) {
      const name = `${file} ${jobName} step ${i + 1}: ${[step.name, step.uses ?? step.run?.trim()].filter(Boolean).join(' | ')}`
      await options.onStep?.(name, dir)
      if (step.if !== undefined && !GREEN_RUN_CONDITIONS.test(step.if))
        throw new StepFailed(
          name,
          1,
          `if: ${step.if}: this runner stops at the first failed step and runs only conditions that hold on a green run`,
        )
      if (step.uses) {
        const action = step.uses.replace(/@.*$/, '')
        if (action === 'actions/checkout') {
          results.push({name, exitCode: 0, ms: 0, output: `cloned ${sha}`, stdout: ''})
        } else if (action === 'actions/setup-node') {
          const wanted = Number(step.with?.['node-version'])
          if (wanted !== options.nodeMajor)
            throw new StepFailed(
              name,
              1,
              `asks for Node ${String(step.with?.['node-version'])}; the runner has Node ${options.nodeMajor}`,
            )
          results.push({name, exitCode: 0, ms: 0, output: `node ${options.nodeMajor}`, stdout: ''})
        } else {
          throw new StepFailed(name, 1, `uses ${step.uses}: only actions/checkout and actions/setup-node are allowed`)
        }
        continue
      }
      const env = {
        ...options.runnerEnv,
        ...(options.github && {
          GITHUB_ACTIONS: 'true',
          GITHUB_SHA: sha,
          GITHUB_REF: options.github.ref,
          GITHUB_REPOSITORY: options.github.repository,
          GITHUB_API_URL: options.github.apiUrl,
        }),
        ...jobEnv,
        ...Object.fromEntries(
          Object.entries(step.env ?? {}).map(([k, v]) => [
            k,
            expression(String(v), options.secrets, sha, options.github?.token),
          ]),
        ),
      }
      await runStep(
        name,
        substituteInstall(expression(step.run ?? '', options.secrets, sha, options.github?.token), options, env),
        dir,
        env,
        results,
      )
    }
  }
  return results
}

const GITLAB_RESERVED = new Set([
  'stages',
  'variables',
  'default',
  'workflow',
  'include',
  'image',
  'services',
  'before_script',
  'after_script',
  'cache',
])

type GitlabImage = string | {name: string; entrypoint?: string[]}

interface GitlabJob {
  stage?: string
  image?: GitlabImage
  services?: (string | {name: string; alias?: string})[]
  variables?: Record<string, string>
  before_script?: string[]
  script: string[]
  needs?: (string | {job: string; artifacts?: boolean})[]
  artifacts?: {paths?: string[]}
  cache?: {key?: string; paths?: string[]}
}

const BY_DIGEST = /^[^@\s]+@sha256:[0-9a-f]{64}$/

function docker(args: string[], options: {env?: Record<string, string>; dockerHost: string; timeout?: number}) {
  return execa('docker', args, {
    env: {DOCKER_HOST: options.dockerHost, ...options.env},
    reject: false,
    all: true,
    timeout: options.timeout,
  })
}

/** What the GitLab runner does before a job: pull its image, with DOCKER_AUTH_CONFIG's credentials when that variable is set. */
async function pullJobImage(image: string, secrets: Record<string, string>, dockerHost: string): Promise<void> {
  const config = await mkdtemp(path.join(os.tmpdir(), 't-ci-docker-config-'))
  try {
    if (secrets.DOCKER_AUTH_CONFIG)
      await writeFile(path.join(config, 'config.json'), secrets.DOCKER_AUTH_CONFIG, {mode: 0o600})
    const pull = await docker(['pull', image], {dockerHost, env: {DOCKER_CONFIG: config}, timeout: 300_000})
    if (pull.exitCode !== 0)
      throw new StepFailed(
        `pull ${image}`,
        pull.exitCode ?? -1,
        `the GitLab runner cannot pull the job image: ${pull.all}`,
      )
  } finally {
    await rm(config, {recursive: true, force: true})
  }
}

async function makeWorldWritable(dir: string): Promise<void> {
  await chmod(dir, 0o777)
  for (const entry of await readdir(dir, {withFileTypes: true, recursive: true})) {
    const p = path.join(entry.parentPath, entry.name)
    if (entry.isSymbolicLink()) continue
    await chmod(p, entry.isDirectory() ? 0o777 : (await stat(p)).mode & 0o111 ? 0o777 : 0o666)
  }
}

/**
 * Runs a GitLab pipeline as the Docker executor does: jobs in stage order, each in a container of
 * its image (by digest) with a fresh clone as its working directory, the artifacts of the earlier
 * stages' jobs it needs (all earlier jobs when `needs` is absent) copied in.
 */
export async function runGitlabPipeline(file: string, text: string, options: RunnerOptions): Promise<StepResult[]> {
  const doc = parse(text) as Record<string, unknown> & {
    stages?: string[]
    variables?: Record<string, string>
    default?: Partial<GitlabJob>
  }
  const stages = doc.stages ?? ['build', 'test', 'deploy']
  const jobs = Object.entries(doc)
    .filter(([k]) => !GITLAB_RESERVED.has(k) && !k.startsWith('.'))
    .map(([name, job]) => ({name, job: job as GitlabJob}))
  for (const j of jobs)
    if (!stages.includes(j.job.stage ?? 'test'))
      throw new Error(`job ${j.name} is in stage ${j.job.stage}, which stages does not list`)
  jobs.sort((a, b) => stages.indexOf(a.job.stage ?? 'test') - stages.indexOf(b.job.stage ?? 'test'))
  const dockerHost = options.runnerEnv.DOCKER_HOST
  const socket = new URL(dockerHost).pathname
  const socketGroup = (await stat(socket)).gid
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
    const cache = job.cache ?? doc.default?.cache ?? (doc.cache as GitlabJob['cache'])
    for (const p of cache?.paths ?? []) {
      const saved = options.gitlabCache && path.join(options.gitlabCache, cache?.key ?? 'default', p)
      if (saved && existsSync(saved)) await cp(saved, path.join(dir, p), {recursive: true})
    }
    await makeWorldWritable(dir)

    const declared = job.image ?? doc.default?.image ?? (doc.image as GitlabImage | undefined)
    const image = typeof declared === 'string' ? declared : declared?.name
    if (!image || !BY_DIGEST.test(image))
      throw new Error(
        `job ${name} runs in ${image ?? 'no image'}; the GitLab jobs must run the retailops runner image by digest (REGISTRY/REPOSITORY@sha256:…)`,
      )
    const entrypoint = typeof declared === 'string' ? undefined : declared?.entrypoint
    await pullJobImage(image, options.secrets, dockerHost)

    const services = job.services ?? doc.default?.services ?? (doc.services as GitlabJob['services']) ?? []
    const dind = services.some((s) => /^docker:[\w.-]*dind$/.test(typeof s === 'string' ? s : s.name))
    const variables = {...doc.variables, ...job.variables}
    const workdir = `/builds/${path.basename(options.origin)}`
    const env: Record<string, string> = {
      ...variables,
      ...options.secrets,
      CI_COMMIT_SHA: sha,
      CI_JOB_NAME: name,
      CI_PROJECT_DIR: workdir,
      GITLAB_CI: 'true',
    }
    const args = [
      'run',
      '--detach',
      '--name',
      `t-ci-${name}-${randomBytes(3).toString('hex')}`,
      '--network',
      'host',
      '--volume',
      `${dir}:${workdir}`,
      '--workdir',
      workdir,
    ]
    // The runner's docker:dind service is the sandbox's Docker Engine, reached through its socket.
    if (dind) {
      env.DOCKER_HOST = 'unix:///var/run/docker.sock'
      args.push('--volume', `${socket}:/var/run/docker.sock`, '--group-add', String(socketGroup))
    } else delete env.DOCKER_HOST
    for (const [k, v] of Object.entries(env)) args.push('--env', `${k}=${v}`)
    // GitLab runs the job's shell in the image; an image entrypoint of [""] is cleared, as the file asks.
    if (entrypoint && entrypoint.filter(Boolean).length > 0)
      throw new Error(
        `job ${name}: image entrypoint ${JSON.stringify(entrypoint)}; the runner image's node entrypoint must be cleared with entrypoint: [""]`,
      )
    args.push('--entrypoint', 'sh', image, '-c', 'trap "exit 0" TERM; while :; do sleep 1; done')
    const started = await docker(args, {dockerHost})
    if (started.exitCode !== 0)
      throw new StepFailed(`${file} ${name}: start`, started.exitCode ?? -1, started.all ?? '')
    const container = started.stdout.trim()
    try {
      const lines = [...(job.before_script ?? doc.default?.before_script ?? []), ...job.script]
      for (const [i, line] of lines.entries()) {
        const stepName = `${file} ${name}: ${line} (line ${i + 1})`
        await options.onStep?.(stepName, dir)
        const t = Date.now()
        const r = await docker(['exec', container, 'sh', '-e', '-c', line], {dockerHost, timeout: 900_000})
        results.push({
          name: stepName,
          exitCode: r.exitCode ?? -1,
          ms: Date.now() - t,
          output: r.all ?? '',
          stdout: r.stdout,
        })
        if (r.exitCode !== 0) throw new StepFailed(stepName, r.exitCode ?? -1, r.all ?? '')
      }
    } finally {
      await docker(['rm', '--force', container], {dockerHost})
    }
    for (const p of cache?.paths ?? []) {
      if (!options.gitlabCache || !existsSync(path.join(dir, p))) continue
      const saved = path.join(options.gitlabCache, cache?.key ?? 'default', p)
      await rm(saved, {recursive: true, force: true})
      await mkdir(path.dirname(saved), {recursive: true})
      await cp(path.join(dir, p), saved, {recursive: true})
    }
    for (const p of job.artifacts?.paths ?? []) {
      if (!existsSync(path.join(dir, p)))
        throw new StepFailed(
          `${file} ${name}: artifacts`,
          1,
          `the job declares the artifact ${p}, which it did not produce`,
        )
    }
    finished.set(name, {dir, paths: job.artifacts?.paths ?? []})
  }
  return results
}
