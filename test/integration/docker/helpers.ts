import {createHash} from 'node:crypto'
import {gzipSync} from 'node:zlib'

import type {LoadedConfig} from '../../../src/config/load.js'
import {dockerClient} from '../../../src/docker/engine.js'
import {MEDIA_TYPES, type RegistryClient} from '../../../src/docker/registry.js'
import {tempProject} from '../../support/project.js'
import {sandboxEnv} from '../../support/sandbox.js'
import {randomName} from '../../support/names.js'

const sandbox = sandboxEnv()
export const REGISTRY = sandbox.registry
export const BASE_IMAGE = sandbox.baseImage
export const BASE_IMAGE_REMOTE = sandbox.baseImageRemote
export const COSIGN = sandbox.cosign

export interface TestProject {
  dir: string
  name: string
  project: () => Promise<LoadedConfig>
  write: (files: Record<string, string>) => Promise<void>
  cleanup: () => Promise<void>
}

/**
 * A throwaway project in a temp folder whose images live under t-docker-<random>/ in the
 * sandbox registry; cleanup removes the folder and the local images (registry blobs stay: the
 * sandbox registry has no garbage collection run, and the repositories are unique per run).
 */
export async function testProject(
  services: Record<string, {context: string; dockerfile?: string; args?: Record<string, string>}>,
  files: Record<string, string>,
  registry = REGISTRY,
): Promise<TestProject> {
  const name = randomName('t-docker')
  const svc = Object.entries(services)
    .map(([s, b]) => {
      const args = b.args ? `, args: ${JSON.stringify(b.args)}` : ''
      return `  ${s}:\n    tier: tolerant\n    build: {context: ${b.context}${b.dockerfile ? `, dockerfile: ${b.dockerfile}` : ''}${args}}`
    })
    .join('\n')
  const project = await tempProject(
    `project: ${name}\nversion: "7"\nregistry: {url: "${registry}", insecure: true}\nservices:\n${svc}\n`,
    files,
    't-docker',
  )
  return {
    dir: project.dir,
    name,
    write: (tree: Record<string, string>) => project.write(tree),
    project: () => project.load(),
    async cleanup() {
      const docker = await dockerClient()
      const images = await docker.listImages({filters: JSON.stringify({reference: [`${registry}/${name}/*`]})})
      for (const image of images)
        await docker
          .getImage(image.Id)
          .remove({force: true})
          .catch(() => undefined)
      await project.remove()
    },
  }
}

/** Reads one file from an image without running it: create a container, GET its archive. */
export async function fileInImage(image: string, file: string): Promise<string | undefined> {
  const docker = await dockerClient()
  const container = await docker.createContainer({Image: image, Cmd: ['true']})
  try {
    const archive = await container.getArchive({path: file}).catch(() => undefined)
    if (!archive) return undefined
    const chunks: Buffer[] = []
    for await (const c of archive as AsyncIterable<Buffer>) chunks.push(c)
    return Buffer.concat(chunks).toString('utf8')
  } finally {
    await container.remove({force: true})
  }
}

/**
 * A minimal image of our own (one layer whose content is `seed`), pushed straight to the registry
 * by tag `test` without Docker; returns its manifest digest. Different seeds, different digests.
 */
export async function pushMinimalImage(client: RegistryClient, repository: string, seed: string): Promise<string> {
  const tar = Buffer.concat([Buffer.from(seed), Buffer.alloc(Math.max(0, 1024 - seed.length))])
  const layer = await client.uploadBlob(repository, gzipSync(tar))
  const config = await client.uploadBlob(
    repository,
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: {},
        rootfs: {type: 'layers', diff_ids: [`sha256:${createHash('sha256').update(tar).digest('hex')}`]},
      }),
    ),
  )
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: {mediaType: MEDIA_TYPES.ociConfig, ...config},
    layers: [{mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer}],
  }
  return client.putManifest(repository, 'test', Buffer.from(JSON.stringify(manifest)), manifest.mediaType)
}

/** Pushes a referrer manifest and makes it the only entry of the subject's `sha256-<hex>` index (the tag schema), as a test rewrites one. */
export async function putSoleReferrer(
  client: RegistryClient,
  repository: string,
  subjectDigest: string,
  manifest: Buffer,
  artifactType: string,
): Promise<void> {
  const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`
  await client.putManifest(repository, digest, manifest, MEDIA_TYPES.ociManifest)
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociIndex,
    manifests: [{mediaType: MEDIA_TYPES.ociManifest, size: manifest.length, digest, artifactType}],
  }
  await client.putManifest(
    repository,
    subjectDigest.replace(':', '-'),
    Buffer.from(JSON.stringify(index)),
    MEDIA_TYPES.ociIndex,
  )
}
