import {createRequire} from 'node:module'

import protobuf from 'protobufjs'
import {describe, expect, it} from 'vitest'

import {baseImages, buildHash, parseBuildArgs} from '../../../src/docker/build.js'
import {classifyPushError} from '../../../src/docker/push.js'
import {BuildProgress, JsonLines, PushProgress, type StreamEvent} from '../../../src/docker/progress.js'
import {imageTag, sanitizeTag} from '../../../src/docker/revision.js'

describe('build arguments and the build hash', () => {
  it('parses KEY=VALUE, takes a bare KEY from the environment, rejects junk', () => {
    expect(parseBuildArgs(['A=1', 'B=x=y', 'C'], {C: 'env'})).toEqual({A: '1', B: 'x=y', C: 'env'})
    expect(() => parseBuildArgs(['1X=2'])).toThrow(/not KEY=VALUE/)
    expect(() => parseBuildArgs(['MISSING'], {})).toThrow(/no value/)
  })

  it('is stable under argument order and changes with context, args, Dockerfile or target', () => {
    const base = {contextDigest: 'c1', dockerfile: 'svc/Dockerfile', buildArgs: {A: '1', B: '2'}}
    const h = buildHash(base)
    expect(buildHash({...base, buildArgs: {B: '2', A: '1'}})).toBe(h)
    expect(buildHash({...base, contextDigest: 'c2'})).not.toBe(h)
    expect(buildHash({...base, buildArgs: {A: '1', B: '3'}})).not.toBe(h)
    expect(buildHash({...base, dockerfile: 'other/Dockerfile'})).not.toBe(h)
    expect(buildHash({...base, target: 'prod'})).not.toBe(h)
  })

  it('changes when a base image resolves to another digest under the same name', () => {
    const base = {contextDigest: 'c1', dockerfile: 'svc/Dockerfile', buildArgs: {BASE_IMAGE: 'reg:5000/base:1'}}
    const h = buildHash({...base, bases: {'reg:5000/base:1': 'sha256:aaa', 'alpine:3': 'sha256:ccc'}})
    expect(buildHash({...base, bases: {'alpine:3': 'sha256:ccc', 'reg:5000/base:1': 'sha256:aaa'}})).toBe(h)
    expect(buildHash({...base, bases: {'reg:5000/base:1': 'sha256:bbb', 'alpine:3': 'sha256:ccc'}})).not.toBe(h)
    expect(buildHash(base)).not.toBe(h)
  })

  it('finds base images with ARG defaults and build arguments substituted, skipping stages and scratch', () => {
    const df =
      'ARG BASE_IMAGE=node:24-slim\nFROM ${BASE_IMAGE} AS deps\nFROM deps\nFROM --platform=linux/amd64 $OTHER\nFROM scratch\n'
    expect(baseImages(df, {})).toEqual(['node:24-slim'])
    expect(baseImages(df, {BASE_IMAGE: 'retailops/node-base:24', OTHER: 'alpine:3'})).toEqual([
      'retailops/node-base:24',
      'alpine:3',
    ])
  })
})

describe('image tags', () => {
  it('carry the config version and the short commit, -dirty for a dirty tree', () => {
    expect(imageTag('3', {commit: '1a2b3c4', dirty: false}, 'f'.repeat(64))).toBe('3-1a2b3c4')
    expect(imageTag('3', {commit: '1a2b3c4', dirty: true}, 'f'.repeat(64))).toBe('3-1a2b3c4-dirty')
    expect(imageTag('1.2', {dirty: false}, 'abcdef0123456789')).toBe('1.2-nogit.abcdef012345')
  })

  it('are valid Docker tags', () => {
    expect(sanitizeTag('v1/beta+2')).toBe('v1-beta-2')
    expect(sanitizeTag('.x')).toBe('x')
    expect(sanitizeTag('a'.repeat(200))).toHaveLength(128)
  })
})

function feed(progress: {handle(e: StreamEvent): void}, text: string): void {
  const lines = new JsonLines((e) => progress.handle(e))
  // Split mid-line on purpose: the engine's chunks do not follow line boundaries.
  for (let i = 0; i < text.length; i += 7) lines.push(text.slice(i, i + 7))
  lines.end()
}

describe('build progress', () => {
  it('classic builder: an error event fails the build and names the failing step with its output', () => {
    const lines: string[] = []
    const p = new BuildProgress((l) => lines.push(l))
    feed(
      p,
      [
        {stream: 'Step 1/3 : FROM base\n'},
        {stream: ' ---> 123\n'},
        {stream: 'Step 2/3 : RUN npm test\n'},
        {stream: ' ---> Running in abc\n'},
        {stream: 'FAIL cart.test.ts\n'},
        {
          errorDetail: {code: 1, message: "The command '/bin/sh -c npm test' returned a non-zero code: 1"},
          error: "The command '/bin/sh -c npm test' returned a non-zero code: 1",
        },
      ]
        .map((e) => JSON.stringify(e))
        .join('\r\n'),
    )
    p.finish()
    expect(p.failure).toEqual({
      message: "The command '/bin/sh -c npm test' returned a non-zero code: 1",
      step: 'Step 2/3 : RUN npm test',
      output: [' ---> Running in abc', 'FAIL cart.test.ts'],
    })
    expect(lines).toContain('FAIL cart.test.ts')
  })

  it('classic builder: success yields the image ID', () => {
    const p = new BuildProgress()
    feed(p, `${JSON.stringify({stream: 'Step 1/1 : FROM scratch\n'})}\n${JSON.stringify({aux: {ID: 'sha256:abc'}})}\n`)
    expect(p.failure).toBeUndefined()
    expect(p.imageId).toBe('sha256:abc')
  })

  it("BuildKit: decodes traces, keeps each step's logs and reports the failing vertex", () => {
    const require = createRequire(import.meta.url)
    const type = protobuf
      .loadSync(require.resolve('dockerode/lib/proto/buildkit_status.proto'))
      .lookupType('moby.buildkit.v1.StatusResponse')
    const trace = (msg: object) => ({
      id: 'moby.buildkit.trace',
      aux: Buffer.from(type.encode(type.fromObject(msg)).finish()).toString('base64'),
    })
    const lines: string[] = []
    const p = new BuildProgress((l) => lines.push(l))
    const events = [
      trace({vertexes: [{digest: 'sha256:v1', name: '[1/2] FROM base', started: {seconds: 1}}]}),
      trace({
        vertexes: [
          {digest: 'sha256:v1', name: '[1/2] FROM base', started: {seconds: 1}, completed: {seconds: 2}, cached: true},
        ],
      }),
      trace({vertexes: [{digest: 'sha256:v2', name: '[2/2] RUN make', started: {seconds: 3}}]}),
      trace({logs: [{vertex: 'sha256:v2', msg: Buffer.from('compiling\nerror: boom\n')}]}),
      trace({
        vertexes: [
          {
            digest: 'sha256:v2',
            name: '[2/2] RUN make',
            started: {seconds: 3},
            completed: {seconds: 4},
            error: 'exit code: 2',
          },
        ],
      }),
      {errorDetail: {message: 'process "/bin/sh -c make" did not complete successfully: exit code: 2'}, error: 'x'},
    ]
    feed(p, events.map((e) => JSON.stringify(e)).join('\n'))
    expect(lines).toEqual(
      expect.arrayContaining([
        '#1 [1/2] FROM base',
        '#1 CACHED',
        '#2 [2/2] RUN make',
        '#2 compiling',
        '#2 error: boom',
        '#2 ERROR: exit code: 2',
      ]),
    )
    expect(p.failure).toEqual({
      message: 'process "/bin/sh -c make" did not complete successfully: exit code: 2',
      step: '#2 [2/2] RUN make',
      output: ['compiling', 'error: boom'],
    })
  })
})

describe('push progress', () => {
  const digest = `sha256:${'a'.repeat(64)}`
  it('takes the digest from aux, or from the status line', () => {
    const a = new PushProgress()
    feed(a, JSON.stringify({aux: {Tag: '1', Digest: digest, Size: 527}}))
    expect(a.outcome).toEqual({digest, size: 527})
    const b = new PushProgress()
    feed(b, JSON.stringify({status: `1-abc: digest: ${digest} size: 527`}))
    expect(b.outcome.digest).toBe(digest)
  })

  it('an error event is a failure even though the stream ended normally', () => {
    const p = new PushProgress()
    feed(
      p,
      [
        {status: 'Preparing', id: 'l1'},
        {
          errorDetail: {message: 'unauthorized: authentication required'},
          error: 'unauthorized: authentication required',
        },
      ]
        .map((e) => JSON.stringify(e))
        .join('\n'),
    )
    expect(p.outcome.failure).toBe('unauthorized: authentication required')
  })

  it('maps registry errors to exit codes', () => {
    expect(classifyPushError('unauthorized: authentication required')).toBe('PERMISSION')
    expect(classifyPushError('denied: requested access to the resource is denied')).toBe('PERMISSION')
    expect(
      classifyPushError('Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused'),
    ).toBe('UNAVAILABLE')
    expect(classifyPushError('blob upload invalid')).toBe('PUSH_FAILED')
  })
})
