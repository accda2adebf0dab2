import {describe, expect, it} from 'vitest'

import {
  baseImageLocation,
  manifestReferences,
  rebuildBlockers,
  rebuildInputs,
} from '../../../src/dr/image-recoverability.js'
import {RETAILOPS_BUILD_TYPE, type SlsaProvenance} from '../../../src/supplychain/provenance.js'

const d = (c: string) => `sha256:${c.repeat(64)}`

describe('manifestReferences', () => {
  it('answers an index’s child manifests (docker manifest lists too) and no blobs', () => {
    for (const mediaType of [
      'application/vnd.oci.image.index.v1+json',
      'application/vnd.docker.distribution.manifest.list.v2+json',
    ])
      expect(
        manifestReferences({mediaType, manifests: [{digest: d('a'), size: 1}, {digest: 'sha256:short'}, null]}),
      ).toEqual({manifests: [{digest: d('a'), size: 1}], blobs: [], foreign: []})
  })

  it('answers an image manifest’s config and layers, foreign layers apart', () => {
    const refs = manifestReferences({
      config: {mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('c'), size: 2},
      layers: [
        {mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('1'), size: 3},
        {mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: d('2'), urls: ['https://x/y']},
      ],
    })
    expect(refs.manifests).toEqual([])
    expect(refs.blobs.map((b) => b.digest)).toEqual([d('c'), d('1')])
    expect(refs.foreign.map((b) => b.digest)).toEqual([d('2')])
  })

  it('tolerates a manifest without config or layers', () => {
    expect(manifestReferences({schemaVersion: 2})).toEqual({manifests: [], blobs: [], foreign: []})
  })
})

function provenance(overrides: {commit?: string; dirty?: boolean; baseDigest?: string | null} = {}): SlsaProvenance {
  const commit = overrides.commit === undefined ? 'c0ffee'.padEnd(40, '0') : overrides.commit
  return {
    buildDefinition: {
      buildType: RETAILOPS_BUILD_TYPE,
      externalParameters: {
        service: 'orders',
        repository: 'r/orders',
        context: 'services/orders',
        dockerfile: 'Dockerfile',
        buildArgs: {},
        platform: 'linux/amd64',
        ...(commit ? {source: {uri: 'git+https://example.invalid/shop', digest: {gitCommit: commit}}} : {}),
      },
      internalParameters: {builder: 'classic', buildHash: 'h', tag: 't', dirty: overrides.dirty ?? false},
      resolvedDependencies: [
        ...(commit ? [{uri: 'git+https://example.invalid/shop', digest: {gitCommit: commit}}] : []),
        {
          uri: 'oci://127.0.0.1:5000/retailops/node-base:24',
          name: '127.0.0.1:5000/retailops/node-base:24',
          ...(overrides.baseDigest === null ? {} : {digest: {sha256: overrides.baseDigest ?? 'b'.repeat(64)}}),
          annotations: {role: 'base-image', resolvedFrom: 'registry'},
        },
        {uri: 'file:services/orders/package-lock.json', name: 'package-lock.json', digest: {sha256: 'e'.repeat(64)}},
      ],
    },
    runDetails: {builder: {id: 'x'}, metadata: {invocationId: 'i', startedOn: '', finishedOn: ''}},
  }
}

describe('rebuildInputs and rebuildBlockers', () => {
  it('reads the commit, context, Dockerfile, lockfile and base images from the provenance', () => {
    expect(rebuildInputs(provenance())).toEqual({
      commit: 'c0ffee'.padEnd(40, '0'),
      sourceUri: 'git+https://example.invalid/shop',
      context: 'services/orders',
      dockerfile: 'Dockerfile',
      lockfile: {name: 'services/orders/package-lock.json', sha256: 'e'.repeat(64)},
      bases: [{name: '127.0.0.1:5000/retailops/node-base:24', digest: `sha256:${'b'.repeat(64)}`}],
      dirty: false,
    })
    expect(rebuildBlockers(rebuildInputs(provenance()))).toEqual([])
  })

  it('names what rules a rebuild out: no commit, uncommitted changes, a base without digest', () => {
    expect(rebuildBlockers(rebuildInputs(provenance({commit: '', dirty: true, baseDigest: null})))).toEqual([
      'the provenance records no source commit (built outside git)',
      'built from a work tree with uncommitted changes, which no commit holds',
      'base image 127.0.0.1:5000/retailops/node-base:24 is recorded without a digest: the same base cannot be pulled again',
    ])
  })
})

describe('baseImageLocation', () => {
  it('reads registry and repository from a name or an oci:// URI', () => {
    expect(baseImageLocation('oci://127.0.0.1:5000/retailops/node-base:24')).toEqual({
      registry: '127.0.0.1:5000',
      repository: 'retailops/node-base',
    })
    expect(baseImageLocation('node:24-slim')).toEqual({registry: 'docker.io', repository: 'library/node'})
  })
})
