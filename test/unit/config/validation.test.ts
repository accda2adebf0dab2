import {describe, expect, it} from 'vitest'

import {MAX_CONFIG_BYTES} from '../../../src/config/load.js'
import {parseConfig} from '../../../src/config/parse.js'
import {ConfigError, ExitCode, MAX_ISSUES_SHOWN} from '../../../src/errors/index.js'

const HEAD = 'project: shop\nregistry: {url: 127.0.0.1:5000, insecure: true}\n'

function refused(text: string): ConfigError {
  try {
    parseConfig(text, 'retailops.yaml')
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    return error as ConfigError
  }
  throw new Error('expected the configuration to be refused')
}

const paths = (e: ConfigError) => e.issues.map((i) => i.path)

describe('service names', () => {
  it.each(['1checkout', '9', '-cart', 'cart-', 'Cart', 'cart_1'])(
    'refuses %j (not a DNS-1035 label) naming the key',
    (name) => {
      const e = refused(`${HEAD}services:\n  ${JSON.stringify(name)}: {tier: operational}\n`)
      expect(e.exitCode).toBe(ExitCode.CONFIG)
      expect(paths(e)).toEqual([`services.${name}`])
      expect(e.message).toContain('DNS-1035 label')
    },
  )

  it('refuses a digit-first name in dependsOn and tenants.services too', () => {
    const e = refused(
      `${HEAD}services:\n  cart: {tier: operational, dependsOn: [2pricing]}\ntenants:\n  - {name: acme, model: shared, services: [3cart]}\n`,
    )
    expect(paths(e)).toEqual(expect.arrayContaining(['services.cart.dependsOn[0]', 'tenants[0].services[0]']))
    expect(e.issues.find((i) => i.path === 'services.cart.dependsOn[0]')?.message).toContain('DNS-1035 label')
  })

  it('accepts letters first, digits later', () => {
    expect(
      Object.keys(
        parseConfig(`${HEAD}services:\n  checkout2: {tier: operational}\n  a-1: {tier: tolerant}\n`).services,
      ),
    ).toEqual(['checkout2', 'a-1'])
  })

  it.each(['canary', 'stable', 'preview'])(
    'refuses checkout-%s next to checkout (a rollout object of checkout)',
    (suffix) => {
      const e = refused(
        `${HEAD}services:\n  checkout: {tier: operational}\n  checkout-${suffix}: {tier: operational}\n`,
      )
      expect(paths(e)).toEqual([`services.checkout-${suffix}`])
      expect(e.issues[0].message).toContain(`rollouts of service "checkout"`)
      expect(e.issues[0].line).toBe(5)
    },
  )

  it('accepts a -canary name when no service owns that prefix', () => {
    expect(
      Object.keys(
        parseConfig(`${HEAD}services:\n  checkout-canary: {tier: operational}\n  canary: {tier: tolerant}\n`).services,
      ),
    ).toHaveLength(2)
  })
})

describe('namespaces', () => {
  const project = 'p'.repeat(40)
  it('refuses a <project>-<tenant> namespace longer than 63 characters, naming the tenant', () => {
    const e = refused(
      `project: ${project}\nregistry: {url: r}\nservices: {cart: {tier: operational}}\ntenants:\n  - {name: ${'t'.repeat(23)}, model: dedicated-namespace}\n`,
    )
    expect(paths(e)).toEqual(['tenants[0].name'])
    expect(e.issues[0].message).toContain('64 characters; Kubernetes allows 63')
  })

  it('accepts exactly 63, and an explicit shorter namespace for a long name', () => {
    parseConfig(
      `project: ${project}\nregistry: {url: r}\nservices: {cart: {tier: operational}}\ntenants:\n  - {name: ${'t'.repeat(22)}, model: dedicated-namespace}\n`,
    )
    parseConfig(
      `project: ${project}\nregistry: {url: r}\nservices: {cart: {tier: operational}}\ntenants:\n  - {name: ${'t'.repeat(40)}, model: dedicated-namespace, namespace: acme}\n`,
    )
  })

  it('refuses explicit namespaces that are not DNS-1123 labels of at most 63 characters', () => {
    const e = refused(`${HEAD}services: {cart: {tier: operational}}
clusters: {main: {}}
environments: {prod: {cluster: main, namespace: Retail_Prod, gateway: {name: gw, namespace: ${'g'.repeat(64)}}}}
tenants:
  - {name: acme, model: dedicated-namespace, namespace: ${'n'.repeat(64)}}
`)
    expect(paths(e).sort()).toEqual([
      'environments.prod.gateway.namespace',
      'environments.prod.namespace',
      'tenants[0].namespace',
    ])
  })
})

describe('durations that must be longer than zero', () => {
  it.each([
    ['rollout: {analysis: {interval: 0s}}', 'services.cart.rollout.analysis.interval'],
    ['rollout: {analysis: {window: 0m}}', 'services.cart.rollout.analysis.window'],
    ['rollout: {progressDeadline: 0s}', 'services.cart.rollout.progressDeadline'],
    ['rollout: {deadline: 0h}', 'services.cart.rollout.deadline'],
    ['dr: {rto: 0s, rpo: 0s}', 'services.cart.dr.rto'],
    ['slos: [{name: avail, objective: 99.9, window: 0d, sli: {type: availability}}]', 'services.cart.slos[0].window'],
  ])('%s is refused at %s', (yaml, key) => {
    const e = refused(`${HEAD}services:\n  cart: {tier: operational, ${yaml}}\n`)
    expect(paths(e)).toEqual([key])
    expect(e.issues[0].message).toBe('must be longer than 0 (e.g. 30s)')
  })

  it('keeps zero where it means something: an RPO of 0 and a scale-down delay of 0', () => {
    parseConfig(
      `${HEAD}services:\n  cart: {tier: operational, dr: {rto: 5m, rpo: 0s}, rollout: {scaleDownDelay: 0s}}\n`,
    )
  })
})

describe('hostile files', () => {
  const bomb = `${HEAD}a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
services: {cart: {tier: operational}}
`

  it('refuses a YAML alias bomb as a configuration error, not an internal one', () => {
    const e = refused(bomb)
    expect(e.exitCode).toBe(ExitCode.CONFIG)
    expect(e.message).toContain('YAML aliases expand too far')
  })

  it('still allows ordinary anchors and aliases', () => {
    const c = parseConfig(`${HEAD}services:\n  cart: &svc {tier: operational, port: 8081}\n  catalog: *svc\n`)
    expect(c.services.catalog.port).toBe(8081)
  })

  it('refuses a file over 1 MiB before parsing it', () => {
    const text = `${HEAD}services:\n${'  # padding padding padding padding padding padding padding padding\n'.repeat(16_000)}  cart: {tier: operational}\n`
    expect(Buffer.byteLength(text)).toBeGreaterThan(MAX_CONFIG_BYTES)
    const e = refused(text)
    expect(e.message).toMatch(/the file is 1\.\d MiB; a configuration may be at most 1 MiB/)
  })

  it('shows at most MAX_ISSUES_SHOWN problems and counts the rest', () => {
    const services = Array.from({length: 5000}, (_, i) => `  s${i}: {tier: bogus}\n`).join('')
    const e = refused(`${HEAD}services:\n${services}`)
    expect(e.issues).toHaveLength(MAX_ISSUES_SHOWN)
    expect(e.total).toBe(5000)
    expect(e.message.split('\n')).toHaveLength(1 + MAX_ISSUES_SHOWN + 1)
    expect(e.message).toContain(`... and ${(5000 - MAX_ISSUES_SHOWN).toLocaleString('en-US')} more`)
    expect(e.details).toMatchObject({total: 5000})
  })

  it('reports duplicate keys with their line (checked in one pass)', () => {
    const e = refused(`${HEAD}services:\n  cart: {tier: operational}\n  cart: {tier: tolerant}\n`)
    expect(e.issues[0]).toMatchObject({line: 5, message: expect.stringContaining('duplicate key "cart"')})
  })
})

describe('header, cookie and mirror steps', () => {
  it('accepts header, cookie and mirror steps on a mirror-safe service', () => {
    const config = parseConfig(
      `${HEAD}services:\n  catalog:\n    tier: operational\n    rollout:\n      mirrorSafe: true\n      steps:\n        - setHeaderRoute: {header: X-Canary, value: staff}\n        - setHeaderRoute: {cookie: canary, value: always}\n        - setMirrorRoute: {percent: 10}\n        - setWeight: 20\n`,
    )
    expect(config.services.catalog.rollout?.steps).toEqual([
      {setHeaderRoute: {header: 'X-Canary', value: 'staff'}},
      {setHeaderRoute: {cookie: 'canary', value: 'always'}},
      {setMirrorRoute: {percent: 10}},
      {setWeight: 20},
    ])
  })

  it('refuses a bad header name and a mirror on checkout, naming the key, line and fix', () => {
    const e = refused(
      `${HEAD}services:\n  checkout:\n    tier: revenue-critical\n    rollout:\n      steps:\n        - setHeaderRoute: {header: "X Canary", value: staff}\n        - setMirrorRoute: {percent: 10}\n`,
    )
    expect(e.exitCode).toBe(ExitCode.CONFIG)
    const byPath = Object.fromEntries(e.issues.map((i) => [i.path, i]))
    expect(byPath['services.checkout.rollout.steps[0].setHeaderRoute']?.message).toContain(
      'header name "X Canary" has characters HTTP does not allow',
    )
    const mirror = byPath['services.checkout.rollout.steps[1].setMirrorRoute']
    expect(mirror?.message).toContain('mirrored requests would place or charge real orders a second time')
    expect(mirror?.message).toContain('set services.checkout.rollout.mirrorSafe: true')
    expect(mirror?.line).toBe(9)
  })

  it("refuses header steps with the service's replicas router", () => {
    const e = refused(
      `${HEAD}services:\n  catalog:\n    tier: operational\n    rollout:\n      router: replicas\n      steps:\n        - setHeaderRoute: {header: X-Canary, value: staff}\n`,
    )
    expect(e.issues.map((i) => i.path)).toEqual(['services.catalog.rollout.steps[0]'])
    expect(e.issues[0].message).toContain('(rollout.router is replicas)')
  })
})
