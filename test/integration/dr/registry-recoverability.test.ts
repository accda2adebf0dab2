import {generateKeyPairSync, randomBytes} from 'node:crypto'
import {rmSync} from 'node:fs'
import path from 'node:path'

import * as k8s from '@kubernetes/client-node'
import {execa} from 'execa'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {MEDIA_TYPES, registryClient, type RegistryClient} from '../../../src/docker/registry.js'
import {checkRecoverability} from '../../../src/dr/recoverability.js'
import {attestImage} from '../../../src/signing/attest.js'
import {generateProvenance, writeProvenance} from '../../../src/supplychain/provenance.js'
import {testContext} from '../../support/context.js'
import {kubeConfig, sandboxEnv} from '../../support/sandbox.js'
import {cli, drProject, random} from './helpers.js'

// Item 4 of issue 20: the recoverability check reads every manifest of a deployed digest (an
// index and its child) and HEADs each blob in the sandbox registry; a blob deleted from the
// registry's storage fails the check naming it, unless the image can be rebuilt from source
// (its provenance attestation's commit and build inputs present in the project's repository).
// The image is this file's own (repository t-dr-blobs-<random>), never a shared one.
const sandbox = sandboxEnv()
const kc = kubeConfig(sandbox)
const core = kc.makeApiClient(k8s.CoreV1Api)
const apps = kc.makeApiClient(k8s.AppsV1Api)
const suffix = random()
const ns = `t-dr-img-${suffix}`
const repository = `t-dr-blobs-${suffix}`
const storage = path.join(process.env.RETAILOPS_SANDBOX_STATE!, 'registry/data/docker/registry/v2')
const labels = {'app.kubernetes.io/managed-by': 'retailops', 'retailops.dev/service': 'orders'}
let client: RegistryClient
let indexDigest: string
let childDigest: string
let layers: string[]
let image: string
let baseDigest: string

const project = drProject(`
project: shop
registry: {url: ${sandbox.registry}, insecure: true}
clusters: {sandbox: {context: ${sandbox.context}}}
environments: {test: {cluster: sandbox, namespace: ${ns}, production: false, router: replicas}}
services:
  orders: {tier: revenue-critical}
`)

async function blob(content: Buffer, mediaType: string): Promise<{mediaType: string; digest: string; size: number}> {
  const {digest, size} = await client.uploadBlob(repository, content)
  return {mediaType, digest, size}
}

/** The registry's own deletion (DELETE /v2/<repo>/blobs/<digest>, which also drops its in-memory descriptor cache) and the blob's data file. */
async function deleteBlobFromStorage(digest: string): Promise<void> {
  const hex = digest.replace('sha256:', '')
  rmSync(path.join(storage, 'blobs/sha256', hex.slice(0, 2), hex), {recursive: true, force: true})
  const res = await fetch(`http://${sandbox.registry}/v2/${repository}/blobs/${digest}`, {method: 'DELETE'})
  expect(res.status).toBe(202)
  expect((await fetch(`http://${sandbox.registry}/v2/${repository}/blobs/${digest}`, {method: 'HEAD'})).status).toBe(
    404,
  )
}

async function git(args: string[]): Promise<string> {
  return (
    await execa('git', ['-c', 'user.email=t@example.invalid', '-c', 'user.name=t', ...args], {cwd: project.dir})
  ).stdout.trim()
}

async function imageCheck(): Promise<{status: string; detail: string}> {
  const checks = await checkRecoverability({
    project: await project.load(),
    environment: {name: 'test', namespace: ns, context: sandbox.context} as never,
    services: ['orders'],
  })
  const found = checks.filter((c) => c.kind === 'image')
  expect(found.map((c) => c.subject)).toEqual([image])
  return found[0]
}

beforeAll(async () => {
  client = await registryClient(sandbox.registry, {insecure: true})
  const [baseRepo, baseTag] = sandbox.baseImageRemote.replace(`${sandbox.registry}/`, '').split(':')
  baseDigest = (await client.headManifest(baseRepo, baseTag))!.digest
  const config = await blob(
    Buffer.from(
      JSON.stringify({architecture: 'amd64', os: 'linux', rootfs: {type: 'layers', diff_ids: []}, nonce: suffix}),
    ),
    MEDIA_TYPES.ociConfig,
  )
  const l1 = await blob(randomBytes(2048), 'application/vnd.oci.image.layer.v1.tar+gzip')
  const l2 = await blob(randomBytes(4096), 'application/vnd.oci.image.layer.v1.tar+gzip')
  layers = [l1.digest, l2.digest]
  const manifest = Buffer.from(
    JSON.stringify({schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config, layers: [l1, l2]}),
  )
  childDigest = await client.putManifest(repository, 'amd64', manifest, MEDIA_TYPES.ociManifest)
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: [
        {
          mediaType: MEDIA_TYPES.ociManifest,
          digest: childDigest,
          size: manifest.length,
          platform: {os: 'linux', architecture: 'amd64'},
        },
      ],
    }),
  )
  indexDigest = await client.putManifest(repository, 'v1', index, MEDIA_TYPES.ociIndex)
  image = `${sandbox.registry}/${repository}@${indexDigest}`
  await core.createNamespace({body: {metadata: {name: ns}}})
  await apps.createNamespacedDeployment({
    namespace: ns,
    body: {
      metadata: {name: 'orders', labels},
      spec: {
        replicas: 1,
        selector: {matchLabels: {app: 'orders'}},
        template: {metadata: {labels: {app: 'orders'}}, spec: {containers: [{name: 'app', image}]}},
      },
    },
  })
  // The project is a git repository holding the image's build inputs.
  project.writeFiles({
    'services/orders/Dockerfile': `FROM ${sandbox.baseImageRemote}\nCOPY . /app\n`,
    'services/orders/package-lock.json': '{"lockfileVersion": 3, "packages": {}}\n',
    'services/orders/main.js': 'console.log("orders")\n',
  })
  await git(['init', '-q'])
  await git(['add', '-A'])
  await git(['commit', '-q', '-m', 'orders'])
})

afterAll(async () => {
  await core.deleteNamespace({name: ns}).catch(() => {})
  rmSync(path.join(storage, 'repositories', repository), {recursive: true, force: true})
  await project.cleanup()
})

describe('registry recoverability: every manifest and blob of a deployed digest, or a rebuild from source', () => {
  it('passes while the index, its child manifest and every blob answer', async () => {
    const check = await imageCheck()
    expect(check.status, check.detail).toBe('pass')
    expect(check.detail).toMatch(/^2 manifest\(s\) and 3 blob\(s\) present in /)
  })

  it('fails naming the blob deleted from the registry storage (exit 41 from dr drill), with no provenance to rebuild from', async () => {
    await deleteBlobFromStorage(layers[1])
    const check = await imageCheck()
    expect(check.status).toBe('fail')
    expect(check.detail).toContain(
      `blob ${layers[1]} (application/vnd.oci.image.layer.v1.tar+gzip) of manifest ${childDigest}`,
    )
    expect(check.detail).not.toContain(layers[0])
    expect(check.detail).toMatch(/not provably rebuildable: no provenance for this digest/)

    const result = await cli(['dr', 'drill', '--json', '--service', 'orders'], {cwd: project.dir})
    expect(result.exitCode, result.stdout + result.stderr).toBe(41)
    const record = JSON.parse(result.stdout).result
    const failed = record.recoverability.filter((c: {status: string}) => c.status === 'fail')
    expect(failed).toHaveLength(1)
    expect(failed[0]).toMatchObject({kind: 'image', subject: image})
    expect(failed[0].detail).toContain(layers[1])
  })

  it('passes with a warning when a signed provenance attestation proves the image rebuildable from a commit the repository holds', async () => {
    const commit = await git(['rev-parse', 'HEAD'])
    const {privateKey, publicKey} = generateKeyPairSync('ec', {namedCurve: 'P-256'})
    project.writeFiles({'.retailops/cosign.pub': publicKey.export({type: 'spki', format: 'pem'}).toString()})
    const provenance = await provenanceFor(commit)
    await attestImage(
      {registry: sandbox.registry, repository, digest: indexDigest},
      {predicateType: 'https://slsa.dev/provenance/v1', predicate: provenance},
      privateKey,
      client,
      testContext(),
    )
    const check = await imageCheck()
    expect(check.status, check.detail).toBe('warn')
    expect(check.detail).toContain(`blob ${layers[1]}`)
    expect(check.detail).toMatch(/rebuildable from source \(SLSA provenance attestation signed with /)
    expect(check.detail).toContain(
      `commit ${commit.slice(0, 12)} holds services/orders/Dockerfile and services/orders/package-lock.json (SHA-256 matches); 1 base image(s) pullable by digest`,
    )
  })

  it('fails when the provenance (the build file, bound by the artifacts lock) names a commit the repository lacks and a lockfile that differs', async () => {
    rmSync(path.join(project.dir, '.retailops/cosign.pub'))
    const missing = 'f'.repeat(40)
    await writeProvenance(project.dir, 'orders', await provenanceFor(missing))
    project.writeFiles({
      '.retailops/artifacts.lock.json': JSON.stringify({
        lockfileVersion: 1,
        artifacts: {
          orders: {
            repository: `${sandbox.registry}/${repository}`,
            digest: indexDigest,
            image,
            tag: 'v1',
            pushedAt: new Date().toISOString(),
          },
        },
      }),
    })
    let check = await imageCheck()
    expect(check.status).toBe('fail')
    expect(check.detail).toContain(`blob ${layers[1]}`)
    expect(check.detail).toContain(`commit ${missing} is not in the repository`)
    expect(check.detail).toContain('the provenance file `retailops build` wrote')

    const commit = await git(['rev-parse', 'HEAD'])
    await writeProvenance(project.dir, 'orders', await provenanceFor(commit, 'a'.repeat(64)))
    check = await imageCheck()
    expect(check.status).toBe('fail')
    expect(check.detail).toMatch(
      /services\/orders\/package-lock\.json at [0-9a-f]{12} has SHA-256 [0-9a-f]{12}…, the build used aaaaaaaaaaaa…/,
    )
  })
})

async function provenanceFor(commit: string, lockSha?: string) {
  const {createHash} = await import('node:crypto')
  const lock = '{"lockfileVersion": 3, "packages": {}}\n'
  return generateProvenance({
    service: 'orders',
    repository: `${sandbox.registry}/${repository}`,
    tag: 'v1',
    context: 'services/orders',
    dockerfile: 'Dockerfile',
    buildArgs: {},
    platform: 'linux/amd64',
    builder: 'classic',
    buildHash: 'h',
    registryDigest: indexDigest,
    bases: [{ref: sandbox.baseImageRemote, digest: baseDigest, source: 'registry'} as never],
    source: {commit},
    dirty: false,
    lockfile: {
      name: 'services/orders/package-lock.json',
      sha256: lockSha ?? createHash('sha256').update(lock).digest('hex'),
    },
    startedOn: new Date(),
    finishedOn: new Date(),
  })
}
