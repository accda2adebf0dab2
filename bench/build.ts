/**
 * Build benchmark: the bundled services built cold in parallel against the same builds one
 * after another, and a rebuild with nothing changed (goal: under 2 s for all services together).
 *
 *   eval "$(bash scripts/sandbox.sh env)"
 *   npx tsx bench/build.ts [--rounds 2] [--concurrency N] [--builder auto|classic|buildkit]
 *
 * "Cold" = every build runs with the engine's layer cache off (--no-cache) and retailops' skip
 * check off (--force); the base image is already in the engine (as on any CI runner that has
 * pulled it once). The unchanged rebuild is measured twice: the engine call alone, and the whole
 * CLI process as a user runs it: the built CLI (`bin/run.js`, after `npm run build`), and the
 * development entry (`bin/dev.js`, TypeScript compiled on the fly by tsx) for comparison.
 */
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdtemp, readdir, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'

import {execa} from 'execa'

import {loadConfig} from '../src/config/load.js'
import {buildImages, type BuilderChoice} from '../src/docker/build.js'
import {dockerClient, engineInfo} from '../src/docker/engine.js'
import {silentOutput} from '../src/ui/output.js'

const {values} = parseArgs({
  options: {
    rounds: {type: 'string', default: '2'},
    concurrency: {type: 'string'},
    builder: {type: 'string', default: 'auto'},
  },
})
const rounds = Number(values.rounds)
const repo = path.resolve(import.meta.dirname, '..')
const servicesDir = path.join(repo, 'services')
const services = (await readdir(servicesDir, {withFileTypes: true}))
  .filter((d) => d.isDirectory() && !['lib', 'node_modules'].includes(d.name))
  .map((d) => d.name)
  .sort()
const baseImage = process.env.RETAILOPS_BASE_IMAGE
if (!baseImage) throw new Error('Set RETAILOPS_BASE_IMAGE (eval "$(bash scripts/sandbox.sh env)").')

const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-build-'))
const project = `bench-build-${randomBytes(3).toString('hex')}`
const registry = process.env.RETAILOPS_REGISTRY ?? '127.0.0.1:5000'
await writeFile(
  path.join(dir, 'retailops.yaml'),
  `project: ${project}\nversion: "1"\nregistry: {url: "${registry}", insecure: true}\nservices:\n${services
    .map(
      (s) =>
        `  ${s}:\n    tier: tolerant\n    build: {context: ${JSON.stringify(servicesDir)}, dockerfile: ${s}/Dockerfile}`,
    )
    .join('\n')}\n`,
)
const loaded = await loadConfig(path.join(dir, 'retailops.yaml'))
const ctx = {out: silentOutput}
const concurrency = values.concurrency ? Number(values.concurrency) : services.length
const builder = values.builder as BuilderChoice

async function timed(
  label: string,
  fn: () => Promise<{failed: string[]; built: string[]; skipped: string[]; builder: string}>,
): Promise<number> {
  const t0 = performance.now()
  const r = await fn()
  const ms = performance.now() - t0
  if (r.failed.length > 0) throw new Error(`${label}: ${r.failed.join(', ')} failed`)
  console.log(
    `${label.padEnd(34)} ${(ms / 1000).toFixed(2).padStart(7)} s   built ${r.built.length}, unchanged ${r.skipped.length}`,
  )
  return ms
}

const info = await engineInfo()
console.log(
  `Docker Engine ${info.version} (API ${info.apiVersion}), ${os.availableParallelism()} CPUs, ${services.length} services (${services.join(', ')}), base ${baseImage}, builder ${builder}\n`,
)
const cold = {parallel: [] as number[], sequential: [] as number[]}
try {
  for (let round = 1; round <= rounds; round++) {
    // Alternate the order so neither mode always runs on a warmer machine.
    const order: ('parallel' | 'sequential')[] =
      round % 2 === 1 ? ['sequential', 'parallel'] : ['parallel', 'sequential']
    for (const mode of order) {
      const c = mode === 'parallel' ? concurrency : 1
      cold[mode].push(
        await timed(`round ${round}: cold, ${mode} (concurrency ${c})`, () =>
          buildImages({project: loaded, baseImage, builder, force: true, noCache: true, concurrency: c}, ctx),
        ),
      )
    }
  }
  await buildImages({project: loaded, baseImage, builder, concurrency}, ctx)
  const unchanged: number[] = []
  for (let i = 0; i < 3; i++)
    unchanged.push(
      await timed(`unchanged rebuild (engine call) #${i + 1}`, () =>
        buildImages({project: loaded, baseImage, builder, concurrency}, ctx),
      ),
    )
  const cliRuns = async (entry: string): Promise<number[]> => {
    const out: number[] = []
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now()
      const r = await execa(
        process.execPath,
        [path.join(repo, 'bin', entry), 'build', '--json', '--base-image', baseImage, '--builder', builder],
        {cwd: dir, reject: false},
      )
      const ms = performance.now() - t0
      const skipped =
        r.exitCode === 0 ? (JSON.parse(r.stdout) as {result: {skipped: string[]}}).result.skipped.length : -1
      console.log(
        `${`unchanged rebuild (${entry}) #${i + 1}`.padEnd(34)} ${(ms / 1000).toFixed(2).padStart(7)} s   unchanged ${skipped}`,
      )
      out.push(ms)
    }
    return out
  }
  const built = existsSync(path.join(repo, 'dist/commands/build.js'))
  if (!built) console.log('dist/ is missing: run `npm run build` to measure the built CLI (bin/run.js).')
  const cli = built ? await cliRuns('run.js') : []
  const dev = await cliRuns('dev.js')
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] / 1000
  const summary = {
    services: services.length,
    cpus: os.availableParallelism(),
    builder,
    coldParallelSeconds: median(cold.parallel),
    coldSequentialSeconds: median(cold.sequential),
    speedup: median(cold.sequential) / median(cold.parallel),
    unchangedEngineSeconds: median(unchanged),
    unchangedBuiltCliSeconds: built ? median(cli) : null,
    unchangedDevCliSeconds: median(dev),
    goalUnder2s: built ? median(cli) < 2 : median(unchanged) < 2,
  }
  console.log(`\n${JSON.stringify(summary, null, 2)}`)
} finally {
  const docker = await dockerClient()
  for (const image of await docker.listImages({filters: JSON.stringify({reference: [`${registry}/${project}/*`]})})) {
    await docker
      .getImage(image.Id)
      .remove({force: true})
      .catch(() => undefined)
  }
  await rm(dir, {recursive: true, force: true})
}
