// The real retailops runner image for integration tests: built from this checkout's dist/ by
// `retailops runner build` (pushed to the sandbox registry, signed, verified), once per set of
// package files. The build project lives in a cache folder per checkout, so `runner build` finds
// its own lock entry and answers upToDate (no build) while dist/, templates and dependencies are
// unchanged: many test files, and many runs, share one build.
import {createHash} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdir, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {MEDIA_TYPES, RegistryClient} from '../../../src/docker/registry.js'
import {parseReference} from '../../../src/docker/reference.js'
import {writeKeyPair} from '../../../src/signing/keys.js'
import {staleBuild} from '../../support/build.js'
import {ROOT} from '../../support/paths.js'
import {sandboxEnv} from '../../support/sandbox.js'
import {runCli} from '../../support/cli.js'

const PASSPHRASE = 'retailops-it-runner'

export interface SandboxRunner {
  /** REGISTRY/retailops-it/retailops-runner@sha256:… (signed with `key`). */
  image: string
  digest: string
  /** The build project (retailops.yaml, .retailops/cosign.{key,pub}, the artifacts lock). */
  dir: string
  key: string
  publicKey: string
  passphrase: string
  /** False when `runner build` found its lock entry current and built nothing. */
  built: boolean
}

let memo: Promise<SandboxRunner> | undefined

/**
 * The runner image of this checkout, built, pushed, signed and verified in the sandbox (or the
 * one built before from the same files). Throws with the fix when dist/ is missing or older than
 * src/ or commands/ (the image copies dist/: a stale one would test old code).
 */
export function sandboxRunnerImage(): Promise<SandboxRunner> {
  memo ??= buildOnce().catch((error: unknown) => {
    memo = undefined
    throw error
  })
  return memo
}

async function buildOnce(): Promise<SandboxRunner> {
  const sandbox = sandboxEnv()
  const stale = staleBuild()
  // The image copies dist/: a stale one would test old code.
  if (stale) throw new Error(`The runner image copies dist/: ${stale}`)
  const dir = path.join(
    os.tmpdir(),
    `retailops-it-runner-${createHash('sha256').update(ROOT).digest('hex').slice(0, 8)}`,
  )
  const key = path.join(dir, '.retailops', 'cosign.key')
  const publicKey = path.join(dir, '.retailops', 'cosign.pub')
  await mkdir(dir, {recursive: true})
  await writeFile(
    path.join(dir, 'retailops.yaml'),
    `project: retailops-it\nregistry: {url: "${sandbox.registry}", insecure: true}\nservices:\n  runner: {tier: tolerant}\n`,
  )
  if (!existsSync(key) || !existsSync(publicKey))
    await writeKeyPair({keyPath: key, publicKeyPath: publicKey, passphrase: PASSPHRASE})

  const r = await runCli(['runner', 'build', '--base-image', sandbox.baseImage, '--json'], {
    cwd: dir,
    built: true,
    timeoutMs: 600_000,
    env: {NO_COLOR: '1', COSIGN_PASSWORD: PASSPHRASE, DOCKER_HOST: sandbox.dockerHost},
  })
  const result = r.doc?.result as {image: string; digest: string; upToDate: boolean} | undefined
  if (r.exitCode !== 0 || !result) {
    throw new Error(
      `\`retailops runner build\` failed in ${dir} (exit ${r.exitCode}); the Jobs' pods cannot run without the runner image. Is the sandbox up (bash scripts/sandbox.sh status) and the base image ${sandbox.baseImage} there?\n${r.stdout}\n${r.stderr}`,
    )
  }
  return {
    image: result.image,
    digest: result.digest,
    dir,
    key,
    publicKey,
    passphrase: PASSPHRASE,
    built: !result.upToDate,
  }
}

/**
 * The runner's manifest under another repository of the same registry (blobs mounted, not
 * copied): the same digest, none of its signatures. A test that signs and schedules "its own"
 * runner uses this, so what it signs or deletes is never the shared build.
 */
export async function copyRunnerImage(runner: SandboxRunner, repository: string): Promise<string> {
  const from = parseReference(runner.image)
  const client = new RegistryClient({registry: from.registry, insecure: true})
  const manifest = await client.getManifest(from.repository, runner.digest)
  if (!manifest)
    throw new Error(
      `${runner.image} is gone from the registry: delete ${runner.dir}/.retailops/artifacts.lock.json and run again (runner build rebuilds it).`,
    )
  const json = manifest.json as {config: {digest: string}; layers: {digest: string}[]}
  for (const digest of [json.config.digest, ...json.layers.map((l) => l.digest)]) {
    const res = await client.request(
      'POST',
      `/v2/${repository}/blobs/uploads/?mount=${digest}&from=${from.repository}`,
      {scope: `repository:${repository}:pull,push`},
    )
    await res.arrayBuffer()
    if (res.status !== 201)
      throw new Error(`mounting ${digest} from ${from.repository} into ${repository}: HTTP ${res.status}`)
  }
  const digest = await client.putManifest(
    repository,
    'runner',
    manifest.body,
    manifest.mediaType || MEDIA_TYPES.dockerManifest,
  )
  if (digest !== runner.digest) throw new Error(`the copy of ${runner.image} in ${repository} has digest ${digest}`)
  return `${from.registry}/${repository}@${digest}`
}
