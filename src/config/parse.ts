// retailops.yaml parsed and validated: YAML with positions, the zod schema, every problem with its
// file, line and key path. loadConfig (./load.ts) imports this module only when the file is not the
// one it last validated (./validated-cache.ts).
import {isNode, isScalar, LineCounter, parseDocument, visit, type Document, type Node} from 'yaml'
import type {z} from 'zod'

import {ConfigError, type ConfigIssue, MAX_ISSUES_SHOWN} from '../errors/index.js'
import {CREDENTIALS_ENV, type InlineCredential, restoreCredentials} from './credentials.js'
import {formatKeyPath} from './inline-credentials.js'
import {assertConfigSize, CONFIG_FILE, MAX_ALIAS_COUNT} from './load.js'
import {configSchema, type RetailOpsConfig} from './schema.js'

/** Parses and validates; every problem is reported with its file, line and key path at once. */
export function parseConfig(text: string, file = CONFIG_FILE, credentials?: InlineCredential[]): RetailOpsConfig {
  assertConfigSize(Buffer.byteLength(text, 'utf8'), file)
  const lineCounter = new LineCounter()
  // uniqueKeys is checked below in one pass: the yaml library's own check is quadratic in a mapping's size.
  const doc = parseDocument(text, {lineCounter, prettyErrors: false, uniqueKeys: false})
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.slice(0, MAX_ISSUES_SHOWN).map((e) => {
        const pos = lineCounter.linePos(e.pos[0])
        return {file, line: pos.line, column: pos.col, path: '', message: `YAML syntax: ${e.message.split('\n')[0]}`}
      }),
      {total: doc.errors.length},
    )
  }
  const duplicates = duplicateKeys(doc, lineCounter, file)
  if (duplicates.length > 0) throw new ConfigError(duplicates.slice(0, MAX_ISSUES_SHOWN), {total: duplicates.length})
  if (credentials) {
    const problems = restoreCredentials(
      (p, v) => doc.setIn(p, v),
      (p) => doc.getIn(p),
      credentials,
    )
    if (problems.length > 0)
      throw new ConfigError(
        problems.map((message) => ({
          file: process.env[CREDENTIALS_ENV] ?? file,
          path: '',
          message: `credential not restored: ${message}`,
        })),
      )
  }
  let data: unknown
  try {
    data = doc.toJS({maxAliasCount: MAX_ALIAS_COUNT}) ?? {}
  } catch (error) {
    if (error instanceof ReferenceError && /alias/i.test(error.message)) {
      throw new ConfigError([
        {
          file,
          path: '',
          message: `YAML aliases expand too far (more than ${MAX_ALIAS_COUNT} expansions, the pattern of a "billion laughs" attack): expand the anchors by hand or use fewer aliases of aliases`,
        },
      ])
    }
    throw error
  }
  // Without zod's compiled fast path: one parse of one file does not repay generating and
  // compiling a function per object schema (measured: 10 to 20 ms less CPU per validation).
  const result = configSchema.safeParse(data, {jitless: true})
  if (!result.success)
    throw new ConfigError(toIssues(result.error.issues.slice(0, MAX_ISSUES_SHOWN), doc, lineCounter, file), {
      total: result.error.issues.length,
    })
  return result.data
}

/**
 * Another YAML file of the repository read like retailops.yaml (the supply-chain waivers): syntax,
 * duplicate keys and alias expansion checked, then the schema, every problem with file, line and
 * key path (exit CONFIG).
 */
export function parseYamlFile<S extends z.ZodType>(text: string, file: string, schema: S): z.output<S> {
  assertConfigSize(Buffer.byteLength(text, 'utf8'), file)
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, {lineCounter, prettyErrors: false, uniqueKeys: false})
  const syntax = doc.errors.map((e) => {
    const pos = lineCounter.linePos(e.pos[0])
    return {file, line: pos.line, column: pos.col, path: '', message: `YAML syntax: ${e.message.split('\n')[0]}`}
  })
  const problems = [...syntax, ...duplicateKeys(doc, lineCounter, file)]
  if (problems.length > 0) throw new ConfigError(problems.slice(0, MAX_ISSUES_SHOWN), {total: problems.length})
  let data: unknown
  try {
    data = doc.toJS({maxAliasCount: MAX_ALIAS_COUNT}) ?? {}
  } catch (error) {
    if (error instanceof ReferenceError && /alias/i.test(error.message))
      throw new ConfigError([
        {file, path: '', message: `YAML aliases expand too far (more than ${MAX_ALIAS_COUNT} expansions)`},
      ])
    throw error
  }
  const result = schema.safeParse(data)
  if (!result.success)
    throw new ConfigError(toIssues(result.error.issues.slice(0, MAX_ISSUES_SHOWN), doc, lineCounter, file), {
      total: result.error.issues.length,
      nextSteps: [`Fix the entries above in ${file}.`],
    })
  return result.data
}

/** Keys that appear twice in one mapping (YAML forbids it; the later one would silently win). */
function duplicateKeys(doc: Document, lineCounter: LineCounter, file: string): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<string>()
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue
        const k = String(pair.key.value)
        if (seen.has(k)) {
          const pos = pair.key.range ? lineCounter.linePos(pair.key.range[0]) : undefined
          issues.push({
            file,
            line: pos?.line,
            column: pos?.col,
            path: '',
            message: `YAML syntax: duplicate key "${k}" in one mapping (remove one of them)`,
          })
        }
        seen.add(k)
      }
    },
  })
  return issues
}

function toIssues(zodIssues: z.core.$ZodIssue[], doc: Document, lineCounter: LineCounter, file: string): ConfigIssue[] {
  return zodIssues.map((issue) => {
    const keyPath = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))
    const node = nearestNode(doc, keyPath)
    const pos = node?.range ? lineCounter.linePos(node.range[0]) : undefined
    return {
      file,
      line: pos?.line,
      column: pos?.col,
      path: formatKeyPath(keyPath),
      message: describeIssue(issue),
    }
  })
}

/** The node at the path, or its deepest existing ancestor (a missing key is reported at its parent). */
function nearestNode(doc: Document, keyPath: (string | number)[]): Node | undefined {
  for (let n = keyPath.length; n >= 0; n--) {
    const node = doc.getIn(keyPath.slice(0, n), true)
    if (isNode(node)) {
      // For unknown keys zod reports the parent; point at the key itself when we can.
      return node
    }
  }
  return doc.contents ?? undefined
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (check the spelling; see \`retailops config schema\`)`
    case 'invalid_type':
      return issue.input === undefined
        ? `is required (expected ${issue.expected})`
        : `expected ${issue.expected}, got ${typeOf(issue.input)}`
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`
    case 'too_small':
      return `must be ${issue.inclusive ? 'at least' : 'more than'} ${String(issue.minimum)}${issue.origin === 'string' ? ' characters long' : issue.origin === 'array' ? ' items' : ''}`
    case 'too_big':
      return `must be ${issue.inclusive ? 'at most' : 'less than'} ${String(issue.maximum)}${issue.origin === 'string' ? ' characters long' : issue.origin === 'array' ? ' items' : ''}`
    case 'invalid_format':
    case 'invalid_union':
      return issue.message.startsWith('Invalid') ? `${issue.message.toLowerCase()}` : `expected ${issue.message}`
    case 'invalid_key':
      return `"${String(issue.path.at(-1))}" is not a valid name: ${issue.issues.map((i) => describeIssue(i)).join('; ')}`
    case 'custom':
      return issue.message
    default:
      return issue.message.startsWith('Invalid') ? issue.message : `expected ${issue.message}`
  }
}

function typeOf(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  return `${typeof value} ${JSON.stringify(value)}`
}
