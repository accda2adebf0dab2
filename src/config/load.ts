import {existsSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import path from 'node:path'

import {isNode, LineCounter, parseDocument, type Document, type Node} from 'yaml'
import type {z} from 'zod'

import {ConfigError, type ConfigIssue, NotFoundError} from '../errors/index.js'
import {configSchema, type RetailOpsConfig} from './schema.js'

export const CONFIG_FILE = 'retailops.yaml'

export interface LoadedConfig {
  /** Absolute path of retailops.yaml. */
  file: string
  /** Folder of retailops.yaml: every relative path in it is relative to this. */
  dir: string
  config: RetailOpsConfig
}

/** --config, then RETAILOPS_CONFIG, then retailops.yaml in this folder or the nearest parent. */
export function findConfigFile(explicit?: string, cwd = process.cwd()): string {
  const given = explicit ?? process.env.RETAILOPS_CONFIG
  if (given) {
    const file = path.resolve(cwd, given)
    if (!existsSync(file)) {
      throw new NotFoundError(`Configuration file ${file} does not exist.`, {
        nextSteps: ['Check the --config path, or run `retailops init` to create a project.'],
      })
    }
    return file
  }
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, CONFIG_FILE)
    if (existsSync(candidate)) return candidate
    if (path.dirname(dir) === dir) break
  }
  throw new NotFoundError(`No ${CONFIG_FILE} in ${cwd} or any parent folder.`, {
    nextSteps: ['Run `retailops init` to scaffold a project, or pass --config PATH.'],
  })
}

export async function loadConfig(explicit?: string, cwd?: string): Promise<LoadedConfig> {
  const file = findConfigFile(explicit, cwd)
  const text = await readFile(file, 'utf8')
  return {file, dir: path.dirname(file), config: parseConfig(text, file)}
}

/** Parses and validates; every problem is reported with its file, line and key path at once. */
export function parseConfig(text: string, file = CONFIG_FILE): RetailOpsConfig {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, {lineCounter, prettyErrors: false, uniqueKeys: true})
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0])
        return {file, line: pos.line, column: pos.col, path: '', message: `YAML syntax: ${e.message.split('\n')[0]}`}
      }),
    )
  }
  const data = doc.toJS() ?? {}
  const result = configSchema.safeParse(data)
  if (!result.success) throw new ConfigError(toIssues(result.error, doc, lineCounter, file))
  return result.data
}

function toIssues(error: z.ZodError, doc: Document, lineCounter: LineCounter, file: string): ConfigIssue[] {
  return error.issues.map((issue) => {
    const keyPath = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))
    const node = nearestNode(doc, keyPath)
    const pos = node?.range ? lineCounter.linePos(node.range[0]) : undefined
    return {
      file,
      line: pos?.line,
      column: pos?.col,
      path: formatPath(keyPath),
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

function formatPath(keyPath: (string | number)[]): string {
  return keyPath.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('')
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (check the spelling; see \`retailops config schema\`)`
    case 'invalid_type':
      return issue.input === undefined ? `is required (expected ${issue.expected})` : `expected ${issue.expected}, got ${typeOf(issue.input)}`
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`
    case 'too_small':
      return `must be ${issue.inclusive ? 'at least' : 'more than'} ${String(issue.minimum)}${issue.origin === 'string' ? ' characters long' : issue.origin === 'array' ? ' items' : ''}`
    case 'too_big':
      return `must be ${issue.inclusive ? 'at most' : 'less than'} ${String(issue.maximum)}${issue.origin === 'string' ? ' characters long' : issue.origin === 'array' ? ' items' : ''}`
    case 'invalid_format':
    case 'invalid_union':
      return issue.message.startsWith('Invalid') ? `${issue.message.toLowerCase()}` : `expected ${issue.message}`
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

