import {describe, expect, it} from 'vitest'

import {
  hasEmbeddedSecret,
  isSecretName,
  MASK,
  redact,
  redactDeep,
  registerSecret,
  secretsInValue,
} from '../../../src/ui/secrets.js'

describe('isSecretName', () => {
  it.each([
    ['DB_PASSWORD', true],
    ['PGPASSWORD', true],
    ['password', true],
    ['MYSQL_PASSWD', true],
    ['COSIGN_PASSPHRASE', true],
    ['API_TOKEN', true],
    ['accessToken', true],
    ['clientSecret', true],
    ['STRIPE_API_KEY', true],
    ['apiKey', true],
    ['PRIVATE_KEY', true],
    ['AWS_SECRET_ACCESS_KEY', true],
    ['SENTRY_DSN', true],
    ['dsn', true],
    ['GOOGLE_APPLICATION_CREDENTIALS', true],
    ['DOCKER_CREDENTIALS_JSON', true],
    ['STRIPE_SK', true],
    ['stripe-sk', true],
    ['DB_PASS', true],
    ['AZURE_STORAGE_CONNECTION_STRING', true],
    ['Authorization', true],
    // Names that point at a secret rather than hold one, and look-alikes.
    ['secretKeyRef', false],
    ['secretName', false],
    ['imagePullSecrets', false],
    ['passwordEnv', false],
    ['urlEnv', false],
    ['TOKEN_FILE', false],
    ['PASSWORD_FILE', false],
    ['secrets', false],
    ['retailops.dev/secret-hash', false],
    ['PWD', false],
    ['OLDPWD', false],
    ['BYPASS_CACHE', false],
    ['TASK', false],
    ['DESK', false],
    ['DATABASE_URL', false],
    ['SERVICE_NAME', false],
    ['name', false],
    ['value', false],
  ])('%s → %s', (name, expected) => {
    expect(isSecretName(name)).toBe(expected)
  })
})

describe('secretsInValue', () => {
  it.each([
    ['redis://:pw@cache:6379/0', ['pw']],
    ['postgres://u:pw@h/db', ['pw']],
    ['postgresql://app:hunter22@db.internal:5432/shop?sslmode=require', ['hunter22']],
    ['https://h/api?user=u&password=pw1&x=1', ['pw1']],
    ['jdbc:postgresql://h/db?user=u&password=pw', ['pw']],
    ['jdbc:sqlserver://h:1433;databaseName=shop;user=sa;password=Sq1;encrypt=true', ['Sq1']],
    ['jdbc:mysql://u:jpw@h:3306/db', ['jpw']],
    ['host=db user=app password=pw2 dbname=shop', ['pw2']],
    ['amqp://guest:guest@rabbit:5672/', ['guest']],
    ['https://hooks.example/x?token=t0k', ['t0k']],
    ['postgres://app@db/shop', []],
    ['http://127.0.0.1:9090/api/v1/query', []],
    ['https://example.com/?page=2&sort=name', []],
    ['plain text', []],
  ])('%s', (value, expected) => {
    expect(secretsInValue(value)).toEqual(expected)
    expect(hasEmbeddedSecret(value)).toBe(expected.length > 0)
  })
})

describe('redact', () => {
  it.each([
    ['connecting to redis://:pw@cache:6379', 'connecting to redis://:***@cache:6379'],
    ['DATABASE_URL=postgres://u:pw@h/db', 'DATABASE_URL=postgres://u:***@h/db'],
    ['jdbc:postgresql://h/db?user=u&password=pw&ssl=true', 'jdbc:postgresql://h/db?user=u&password=***&ssl=true'],
    ['DB_PASSWORD=pw1 ./run', 'DB_PASSWORD=*** ./run'],
    ['--password=x', '--password=***'],
    ['token: t1', 'token: ***'],
    ['{"apiKey":"k1","name":"shop"}', '{"apiKey":"***","name":"shop"}'],
    ['{"name":"DB_PASSWORD","value":"pw1"}', '{"name":"DB_PASSWORD","value":"***"}'],
    [
      '- name: STRIPE_SK\n  value: sk1\n- name: LOG_LEVEL\n  value: info',
      '- name: STRIPE_SK\n  value: ***\n- name: LOG_LEVEL\n  value: info',
    ],
    [
      '- name: DB_PASSWORD\n  valueFrom:\n    secretKeyRef: {name: db, key: pw}',
      '- name: DB_PASSWORD\n  valueFrom:\n    secretKeyRef: {name: db, key: pw}',
    ],
    ['automountServiceAccountToken: false', 'automountServiceAccountToken: false'],
    ['secretName: checkout-db', 'secretName: checkout-db'],
    ['Missing secrets: checkout-db', 'Missing secrets: checkout-db'],
    ['http://127.0.0.1:9090/api/v1/query?query=up', 'http://127.0.0.1:9090/api/v1/query?query=up'],
  ])('%j', (text, expected) => {
    expect(redact(text)).toBe(expected)
  })

  it('masks a registered value wherever it stands as a token, but not inside a longer word or digest', () => {
    registerSecret('dead-beef-42')
    registerSecret('cafe')
    expect(redact('auth failed for dead-beef-42.')).toBe(`auth failed for ${MASK}.`)
    expect(redact('Basic cafe')).toBe(`Basic ${MASK}`)
    const digest = `sha256:${'0'.repeat(30)}cafe${'1'.repeat(30)}`
    expect(redact(digest)).toBe(digest)
    expect(redact('cafeteria')).toBe('cafeteria')
  })

  it('does not mask a short registered value by itself (a common word), only where it stands as a secret', () => {
    registerSecret('pw1')
    expect(redact('step pw1 of the plan')).toBe('step pw1 of the plan')
    expect(redact('PGPASSWORD=pw1 psql')).toBe('PGPASSWORD=*** psql')
    expect(redact('postgres://u:pw1@h/db')).toBe('postgres://u:***@h/db')
  })

  it('stays linear on a long token without separators', () => {
    const blob = 'A'.repeat(200_000)
    const started = performance.now()
    expect(redact(`${blob}:${blob}=x`)).toHaveLength(400_003)
    expect(performance.now() - started).toBeLessThan(2000)
  })
})

describe('redactDeep', () => {
  it('masks secret-named fields, env entries and URLs, and keeps the shape', () => {
    const input = {
      objects: [
        {
          kind: 'Deployment',
          spec: {
            template: {
              spec: {
                containers: [
                  {
                    env: [
                      {name: 'SENTRY_DSN', value: 'https://k3y@sentry.example/1'},
                      {name: 'DB_PASSWORD', value: 'pw'},
                      {name: 'DB_PASSWORD_FILE', value: '/run/secrets/pw'},
                      {name: 'REDIS_URL', value: 'redis://:rpw@cache:6379'},
                      {name: 'TOKEN', valueFrom: {secretKeyRef: {name: 'tok', key: 'TOKEN'}}},
                    ],
                  },
                ],
              },
            },
          },
        },
      ],
      replicas: 3,
      enabled: true,
      credentials: {password: 'x', username: 'u'},
    }
    expect(redactDeep(input)).toEqual({
      objects: [
        {
          kind: 'Deployment',
          spec: {
            template: {
              spec: {
                containers: [
                  {
                    env: [
                      {name: 'SENTRY_DSN', value: MASK},
                      {name: 'DB_PASSWORD', value: MASK},
                      {name: 'DB_PASSWORD_FILE', value: '/run/secrets/pw'},
                      {name: 'REDIS_URL', value: 'redis://:***@cache:6379'},
                      {name: 'TOKEN', valueFrom: {secretKeyRef: {name: 'tok', key: 'TOKEN'}}},
                    ],
                  },
                ],
              },
            },
          },
        },
      ],
      replicas: 3,
      enabled: true,
      credentials: {password: MASK, username: 'u'},
    })
    expect(input.credentials.password).toBe('x')
  })

  it('masks what JSON would print for objects with toJSON (URL), and keeps dates', () => {
    const at = new Date('2026-11-27T00:00:00Z')
    expect(redactDeep({source: new URL('postgres://app:pw1@db:5432/shop'), at})).toEqual({
      source: 'postgres://app:***@db:5432/shop',
      at,
    })
  })
})

describe('redact on large text', () => {
  // The patterns as redact ran them over the whole text before it skipped what cannot match and went line by
  // line for `key: value`: the result must be the same, character for character.
  const URL_USERINFO = /(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*:\/\/[^\s/@:'"<>]*:)([^\s/'"<>]+)@/gi
  const KEY_EQUALS =
    /(?<![A-Za-z0-9_.]|[A-Za-z0-9_.]-)([A-Za-z_][A-Za-z0-9_.-]*)(\s*=\s*)("[^"]*"|'[^']*'|[^\s&;,'"<>]+)/g
  const KEY_COLON =
    /(?<![A-Za-z0-9_.\-/])(["']?)([A-Za-z_][A-Za-z0-9_.\-/]*)\1([ \t]*:[ \t]*)("(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^\s"',}{\][]+)/g
  const ENV_YAML = /(name:[ \t]*["']?)([A-Za-z_][A-Za-z0-9_.-]*)(["']?[ \t]*\n[ \t]*value:[ \t]*)([^\n]+)/g
  const ENV_JSON = /("name"\s*:\s*")([A-Za-z_][A-Za-z0-9_.-]*)("\s*,\s*"value"\s*:\s*)("(?:[^"\\]|\\.)*")/g
  const BENIGN = /^(["']?)(true|false|null|~|\*\*\*|)\1$/i
  const maskValue = (value: string) => {
    const v = value.trimEnd()
    if (BENIGN.test(v)) return value
    const q = v[0] === '"' || v[0] === "'" ? v[0] : ''
    return `${q}${MASK}${q}${value.slice(v.length)}`
  }
  const wholeText = (text: string) =>
    text
      .replace(URL_USERINFO, (_m, head: string) => `${head}${MASK}@`)
      .replace(ENV_YAML, (m, a: string, name: string, b: string, value: string) =>
        isSecretName(name) ? `${a}${name}${b}${maskValue(value)}` : m,
      )
      .replace(ENV_JSON, (m, a: string, name: string, b: string, value: string) =>
        isSecretName(name) ? `${a}${name}${b}${maskValue(value)}` : m,
      )
      .replace(KEY_EQUALS, (m, key: string, eq: string, value: string) =>
        isSecretName(key) ? `${key}${eq}${maskValue(value)}` : m,
      )
      .replace(KEY_COLON, (m, q: string, key: string, colon: string, value: string) =>
        isSecretName(key) ? `${q}${key}${q}${colon}${maskValue(value)}` : m,
      )

  const pieces = [
    'token',
    'apiKey',
    'privateKey',
    'stripe-sk',
    'task',
    'DB_PASS',
    'passWord',
    'secretKeyRef',
    'name',
    'value',
    'image',
    'key',
    'Authorization',
    'connectionString',
    ':',
    ': ',
    ' ',
    '\t',
    '\n',
    '\r\n',
    '\n  ',
    '- ',
    '"',
    "'",
    '\\"',
    '=',
    ',',
    '{',
    '}',
    '[',
    ']',
    '/',
    '.',
    '-',
    'x1',
    'hunter2',
    'redis://u:pw@cache',
    '"name":"DB_PASSWORD","value":"pw"',
    'name: API_TOKEN\n  value: t0k',
    'true',
    '***',
  ]

  it('masks exactly what the patterns over the whole text masked, on generated text', () => {
    let seed = 18
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed
    }
    let changed = 0
    for (let round = 0; round < 3000; round++) {
      let text = ''
      for (let i = next() % 60; i >= 0; i--) text += pieces[next() % pieces.length]
      const expected = wholeText(text)
      expect(redact(text), JSON.stringify(text)).toBe(expected)
      if (expected !== text) changed++
    }
    // The generator reaches masking often, so the comparison is not all about untouched text.
    expect(changed).toBeGreaterThan(1000)
  })

  it('leaves a rendered manifest without secrets as it is and masks the one line that has one', () => {
    const doc = (i: number) =>
      `---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc${i}\n  labels:\n    app.kubernetes.io/name: svc${i}\nspec:\n  selector:\n    matchExpressions:\n      - key: app.kubernetes.io/name\n        operator: In\n`
    const text = Array.from({length: 200}, (_, i) => doc(i)).join('')
    expect(redact(text)).toBe(text)
    const leaked = `${text}    token: abc123\n${text}`
    expect(redact(leaked)).toBe(`${text}    token: ***\n${text}`)
    // Each kind of secret name, alone on its line among lines without one.
    for (const [name, masked] of [
      ['stripe-sk', true],
      ['SENTRY_DSN', true],
      ['DB_PWD', true],
      ['dbPassword', true],
      ['apiKey', true],
      ['Authorization', true],
      ['connectionString', true],
      ['clientCredentials', true],
      ['tokenFile', false],
    ] as const) {
      const line = `    ${name}: v4lue`
      expect(redact(`${text}${line}\n${text}`)).toBe(`${text}${masked ? `    ${name}: ***` : line}\n${text}`)
    }
  })
})
