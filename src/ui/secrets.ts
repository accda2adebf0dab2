/**
 * The one place that decides what a secret is and masks it. Every output channel goes through
 * `redact` (text) or `redactDeep` (structured data): terminal lines, the --json envelope (results,
 * errors, warnings), report files and the state ConfigMaps retailops writes to the cluster.
 *
 * Two ways a secret is found:
 * - by context, whatever its length: the password in a URL's userinfo (`redis://:pw@host`), the
 *   value of a secret-named parameter or key (`?password=pw`, `;password=pw`, `DB_PASSWORD=pw`,
 *   `token: pw`, `"apiKey": "pw"`), and the value of a Kubernetes env entry whose name is a
 *   secret name (`name: DB_PASSWORD` / `value: pw`);
 * - by value, for secrets the code learned about (`registerSecret`: registry passwords, tokens,
 *   key passphrases, database passwords): masked wherever they appear as a whole token, i.e. not
 *   glued to a letter or digit on either side, so a registered "dead" never eats part of an image
 *   digest. Values shorter than MIN_LITERAL characters are not masked by value (a password "pw1"
 *   would otherwise blank every "pw1" in a report); they are masked by context, which is where a
 *   short secret appears: as the value of a secret key or in a URL.
 */

export const MASK = '***'

/** Registered values at least this long are masked wherever they appear as a token. */
export const MIN_LITERAL = 4

// Whole words that make a name secret wherever they appear in it (PGPASSWORD, clientSecret).
const SECRET_WORDS =
  /PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|CREDENTIAL|APIKEY|API_KEY|PRIVATE_?KEY|ACCESS_?KEY|SIGNING_?KEY|ENCRYPTION_?KEY|AUTHORIZATION|CONNECTION_?STRING/
// Short words that only count as a whole part of the name (DB_PASS, SENTRY_DSN, STRIPE_SK, PWD).
const SECRET_PARTS = new Set(['PASS', 'PWD', 'DSN', 'SK'])
// Names that merely point at a secret (secretKeyRef, passwordEnv, TOKEN_FILE, imagePullSecrets).
const REFERENCE_SUFFIXES = new Set([
  'REF',
  'KEYREF',
  'REFS',
  'NAME',
  'NAMES',
  'ENV',
  'FILE',
  'PATH',
  'DIR',
  'SECRETS',
  'TTL',
  'TYPE',
  'KIND',
  'EXPIRY',
  'EXPIRES',
  'LENGTH',
  'ID',
  'HASH',
  'SHA256',
  'DIGEST',
])
// Process environment names that look secret but are not (the working directory).
const NOT_SECRET = new Set(['PWD', 'OLDPWD'])

/** `apiKey` → API_KEY, `stripe-sk` → STRIPE_SK, `retailops.dev/secret-hash` → RETAILOPS_DEV_SECRET_HASH. */
function normalize(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .toUpperCase()
}

/**
 * Whether a variable, parameter or field of this name holds a secret: PASSWORD, PASSWD,
 * PASSPHRASE, SECRET, TOKEN, CREDENTIAL(S), API_KEY, PRIVATE_KEY, ACCESS_KEY, SIGNING_KEY,
 * ENCRYPTION_KEY, AUTHORIZATION, CONNECTION_STRING anywhere in it; PASS, PWD, DSN or SK as a whole
 * part (`DB_PASS`, `SENTRY_DSN`, `STRIPE_SK`). Names ending in REF, NAME, ENV, FILE, PATH and
 * similar name a secret rather than hold one (`secretKeyRef`, `passwordEnv`, `TOKEN_FILE`).
 */
export function isSecretName(name: string): boolean {
  let answer = secretNameCache.get(name)
  if (answer === undefined) {
    answer = classifyName(name)
    // Redacting a large render asks about the same few hundred keys hundreds of thousands of times.
    if (secretNameCache.size >= 10_000) secretNameCache.clear()
    secretNameCache.set(name, answer)
  }
  return answer
}

const secretNameCache = new Map<string, boolean>()

function classifyName(name: string): boolean {
  const n = normalize(name)
  if (!n || NOT_SECRET.has(n)) return false
  const parts = n.split('_')
  if (REFERENCE_SUFFIXES.has(parts.at(-1)!)) return false
  if (SECRET_WORDS.test(n)) return true
  return parts.some((p) => SECRET_PARTS.has(p))
}

// scheme://[user]:password@ — the password is everything up to the last '@' before the host part.
const URL_USERINFO = /(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*:\/\/[^\s/@:'"<>]*:)([^\s/'"<>]+)@/gi
// key=value (query strings, JDBC ;key=value, libpq DSNs, env assignments, --flag=value).
const KEY_EQUALS =
  /(?<![A-Za-z0-9_.]|[A-Za-z0-9_.]-)([A-Za-z_][A-Za-z0-9_.-]*)(\s*=\s*)("[^"]*"|'[^']*'|[^\s&;,'"<>]+)/g
// key: value and "key": "value" (YAML, JSON, log lines): a quoted value, or one word (a sentence
// such as "Secret: checkout-db is missing" loses only its first word).
const KEY_COLON =
  /(?<![A-Za-z0-9_.\-/])(["']?)([A-Za-z_][A-Za-z0-9_.\-/]*)\1([ \t]*:[ \t]*)("(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^\s"',}{\][]+)/g
// A Kubernetes env entry, as YAML (name: X, then value: Y) or as JSON ("name":"X","value":"Y").
const ENV_YAML = /(name:[ \t]*["']?)([A-Za-z_][A-Za-z0-9_.-]*)(["']?[ \t]*\n[ \t]*value:[ \t]*)([^\n]+)/g
const ENV_JSON = /("name"\s*:\s*")([A-Za-z_][A-Za-z0-9_.-]*)("\s*,\s*"value"\s*:\s*)("(?:[^"\\]|\\.)*")/g

const BENIGN = /^(["']?)(true|false|null|~|\*\*\*|)\1$/i

function maskValue(value: string): string {
  const v = value.trimEnd()
  if (BENIGN.test(v)) return value
  const q = v[0] === '"' || v[0] === "'" ? v[0] : ''
  return `${q}${MASK}${q}${value.slice(v.length)}`
}

const registered = new Set<string>()
let literalPattern: RegExp | undefined

/** Values registered here are masked in every output channel (see the module comment for how). */
export function registerSecret(value: string | undefined): void {
  if (!value || value === MASK || registered.has(value)) return
  registered.add(value)
  literalPattern = undefined
  // A URL registered as a whole also teaches its password (short ones are caught by context).
  for (const s of secretsInValue(value)) if (s !== value) registerSecret(s)
}

/** A registered value longer than MIN_LITERAL, as a whole token (not inside a longer word). */
function literals(): RegExp | undefined {
  if (literalPattern) return literalPattern
  const values = [...registered].filter((v) => v.length >= MIN_LITERAL).sort((a, b) => b.length - a.length)
  if (values.length === 0) return undefined
  const escaped = values.map((v) => v.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
  literalPattern = new RegExp(`(?<![A-Za-z0-9])(?:${escaped.join('|')})(?![A-Za-z0-9])`, 'g')
  return literalPattern
}

/**
 * The secrets inside a single value: the password of a URL (also JDBC and `?password=`
 * parameters) or of a DSN (`password=pw host=h`). Used for values whose name is not secret.
 */
export function secretsInValue(value: string): string[] {
  const found: string[] = []
  for (const m of value.matchAll(URL_USERINFO)) found.push(m[2])
  for (const m of value.matchAll(KEY_EQUALS)) if (isSecretName(m[1])) found.push(unquote(m[3]))
  return found.filter((s) => s !== '' && s !== MASK)
}

/** Whether a value carries a secret inside it (a URL with a password, `?password=`, a DSN). */
export function hasEmbeddedSecret(value: string): boolean {
  return secretsInValue(value).length > 0
}

function unquote(v: string): string {
  return /^(["']).*\1$/s.test(v) ? v.slice(1, -1) : v
}

/** Masks every secret in a piece of text (see the module comment for what counts). */
export function redact(text: string): string {
  if (!text) return text
  let out = text
  const lit = literals()
  if (lit) out = out.replace(lit, MASK)
  // Each pattern runs only where it can match (a 24 MB render holds no URL, no "=", no JSON env entry):
  // scanning every position of large text for them was a third of `render`'s time.
  if (out.includes('://')) out = out.replace(URL_USERINFO, (_m, head: string) => `${head}${MASK}@`)
  if (out.includes('value:'))
    out = out.replace(ENV_YAML, (m, a: string, name: string, b: string, value: string) =>
      isSecretName(name) ? `${a}${name}${b}${maskValue(value)}` : m,
    )
  if (out.includes('"name"'))
    out = out.replace(ENV_JSON, (m, a: string, name: string, b: string, value: string) =>
      isSecretName(name) ? `${a}${name}${b}${maskValue(value)}` : m,
    )
  if (out.includes('='))
    out = out.replace(KEY_EQUALS, (m, key: string, eq: string, value: string) =>
      isSecretName(key) ? `${key}${eq}${maskValue(value)}` : m,
    )
  return maskKeyColon(out)
}

// Every name isSecretName accepts holds one of these, case aside (its SECRET_WORDS and SECRET_PARTS,
// with KEY for the *_KEY words and CONNECTION for CONNECTION_STRING).
const SECRET_HINT = /pass|pwd|dsn|sk|secret|token|credential|key|authorization|connection/gi

const maskColonValue = (m: string, q: string, key: string, colon: string, value: string): string =>
  isSecretName(key) ? `${q}${key}${q}${colon}${maskValue(value)}` : m

/**
 * KEY_COLON over `text`, line by line and only on lines that hold a SECRET_HINT: no match of
 * KEY_COLON spans a newline (neither its key, its colon nor its value can hold one) and a newline
 * is no key character for its look-behind, so each line matches on its own exactly as within the
 * whole; a line without a hint has no key it would mask. The same result as
 * `text.replace(KEY_COLON, ...)` without matching every "key: value" of a large YAML text.
 */
function maskKeyColon(text: string): string {
  SECRET_HINT.lastIndex = 0
  let out = ''
  let copied = 0
  for (let hint = SECRET_HINT.exec(text); hint; hint = SECRET_HINT.exec(text)) {
    const start = text.lastIndexOf('\n', hint.index) + 1
    const newline = text.indexOf('\n', hint.index)
    const end = newline < 0 ? text.length : newline
    out += text.slice(copied, start) + text.slice(start, end).replace(KEY_COLON, maskColonValue)
    copied = end
    SECRET_HINT.lastIndex = end
  }
  return copied === 0 ? text : out + text.slice(copied)
}

/**
 * Masks secrets in structured data (a --json result, a state document): string values of
 * secret-named keys, the value of `{name: SECRET_NAME, value}` env entries, and every other string
 * through `redact`. Returns a copy; numbers, booleans and the shape are kept.
 */
export function redactDeep<T>(value: T): T {
  return walk(value, undefined) as T
}

function walk(value: unknown, key: string | undefined): unknown {
  if (typeof value === 'string')
    return key !== undefined && isSecretName(key) && !BENIGN.test(value) ? MASK : redact(value)
  if (Array.isArray(value)) return value.map((v) => walk(v, undefined))
  if (value === null || typeof value !== 'object') return value
  if (value instanceof Date) return value
  // What JSON.stringify would print: a URL, a Buffer or any object with toJSON is masked as that.
  if (typeof (value as {toJSON?: unknown}).toJSON === 'function')
    return walk((value as {toJSON: () => unknown}).toJSON(), key)
  const record = value as Record<string, unknown>
  const envEntry = typeof record.name === 'string' && typeof record.value === 'string' && isSecretName(record.name)
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(record)) out[k] = envEntry && k === 'value' && v !== '' ? MASK : walk(v, k)
  return out
}
