// Compiles retailops.yaml's zod schema (src/config/schema.ts) into plain code without zod:
// src/config/validate-config.generated.ts. `npm run build` runs it (under tsx, before tsc); CI fails
// when the file drifts from the schema.
//
// Why: loading zod and building the schema's ~1,000 objects cost more than the rest of a command's
// start (issue 18), on every run after retailops.yaml changed. The compiled validator answers a
// valid file alone; anything it does not accept goes on to the zod schema, which says what is wrong
// with the file, line and key path (src/config/parse.ts). So the compiled code only has to be exact
// where it says yes: it returns what zod's parse returns (defaults, transforms, key order) or
// nothing. test/unit/config/compiled-validator.test.ts holds it to that against zod itself.
//
// Every construct of the schema is translated here from zod's own definition (`_zod.def`) with the
// semantics of the installed zod (node_modules/zod/v4/core/schemas.js, checks.js). A construct this
// generator does not know fails the build, naming where it is: extend the generator rather than
// letting the compiled validator guess. Refinements must be named exports of
// src/config/schema-checks.ts, the module the compiled code imports them from.
import {writeFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

import * as prettier from 'prettier'

import * as schemaChecks from '../src/config/schema-checks.js'
import {configSchema, superRefinements} from '../src/config/schema.js'

const OUT = fileURLToPath(new URL('../src/config/validate-config.generated.ts', import.meta.url))

/** What the generator reads of a zod schema's or check's definition; the rest by key. */
interface ZodDef {
  [key: string]: unknown
  type: string
  check?: string
  format?: string
  checks?: ZodInternal[]
  innerType: ZodInternal
  in: ZodInternal
  out: ZodInternal
  element: ZodInternal
  shape: Record<string, ZodInternal>
  catchall?: ZodInternal
  keyType: ZodInternal
  valueType: ZodInternal
  options: ZodInternal[]
  discriminator?: string
}

/** A zod schema or check as the generator reads it: its internals. */
interface ZodInternal {
  _zod: {
    def: ZodDef
    traits: Set<string>
    optin?: 'optional' | 'defaulted'
    optout?: 'optional'
    propValues?: Record<string, Set<unknown>>
    check?: unknown
  }
}

const checkNames = new Map<unknown, string>()
for (const [name, value] of Object.entries(schemaChecks)) if (typeof value === 'function') checkNames.set(value, name)

const functions = new Map<ZodInternal, string>()
/** Function names by body: schemas that parse alike (copies made by .describe(), say) share one function. */
const functionsByBody = new Map<string, string>()
const bodies: string[] = []
const constants = new Map<string, string>()

/** A module-level constant holding code's value, shared by every place that needs the same one. */
function constant(code: string): string {
  let name = constants.get(code)
  if (!name) constants.set(code, (name = `c${constants.size}`))
  return name
}

function fail(where: string, what: string): never {
  throw new Error(
    `gen-config-validator: ${what} at ${where || 'the root'}; teach scripts/gen-config-validator.ts this construct`,
  )
}

/** A literal expression that evaluates to a fresh copy of value (a default must not be shared between parses). */
function literal(value: unknown, where: string): string {
  if (value === undefined) return 'undefined'
  const json = JSON.stringify(value)
  if (json === undefined || !isJsonEqual(JSON.parse(json), value))
    fail(where, `a default that is not plain data (${String(value)})`)
  return `(${json})`
}

function isJsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  return (
    ka.length === kb.length &&
    ka.every((k, i) => k === kb[i] && isJsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  )
}

/** The function that parses values of this schema (the schema has no cycles: zod's lazy is refused). */
function fn(schema: ZodInternal, where: string): string {
  const known = functions.get(schema)
  if (known) return known
  const body = parseBody(schema, where)
  let name = functionsByBody.get(body)
  if (!name) {
    name = `s${functionsByBody.size}`
    functionsByBody.set(body, name)
    bodies.push(`function ${name}(v: any): any {\n${body}\n}`)
  }
  functions.set(schema, name)
  return name
}

/** Statements that turn v into the schema's output, or throw NO; then the schema's own checks. */
function parseBody(schema: ZodInternal, where: string): string {
  const def = schema._zod.def
  const out: string[] = []
  switch (def.type) {
    case 'string':
      out.push(`if (typeof v !== 'string') throw NO`)
      if (def.coerce) fail(where, 'a coercing string')
      break
    case 'number':
      out.push(`if (typeof v !== 'number' || !Number.isFinite(v)) throw NO`)
      if (def.coerce) fail(where, 'a coercing number')
      break
    case 'boolean':
      out.push(`if (typeof v !== 'boolean') throw NO`)
      if (def.coerce) fail(where, 'a coercing boolean')
      break
    case 'literal':
    case 'enum': {
      // The values zod itself accepts (an enum's own, without a numeric enum's reverse keys).
      const values = [...(schema as unknown as {_zod: {values: Set<unknown>}})._zod.values]
      for (const value of values)
        if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')
          fail(where, `a ${def.type} of ${typeof value}`)
      out.push(`if (!${constant(`new Set(${JSON.stringify(values)})`)}.has(v)) throw NO`)
      break
    }
    case 'optional': {
      const inner = def.innerType
      const parse = fn(inner, where)
      out.push(inner._zod.optin === 'defaulted' ? `v = ${parse}(v)` : `if (v !== undefined) v = ${parse}(v)`)
      break
    }
    case 'nullable':
      out.push(`if (v !== null) v = ${fn(def.innerType, where)}(v)`)
      break
    case 'default': {
      const fallback = literal(def.defaultValue, where)
      out.push(
        `if (v === undefined) v = ${fallback}`,
        `else {`,
        `v = ${fn(def.innerType, where)}(v)`,
        `if (v === undefined) v = ${fallback}`,
        `}`,
      )
      break
    }
    case 'pipe':
      out.push(`v = ${fn(def.out, where)}(${fn(def.in, where)}(v))`)
      break
    case 'transform': {
      const transform = def.transform
      if (transform === String) out.push('v = String(v)')
      else if (checkNames.has(transform)) out.push(`v = checks.${checkNames.get(transform)}(v)`)
      else fail(where, 'a transform that is neither String nor an export of src/config/schema-checks.ts')
      break
    }
    case 'array': {
      const element = fn(def.element, `${where}[]`)
      out.push(
        `if (!Array.isArray(v)) throw NO`,
        `const o = new Array(v.length)`,
        `for (let i = 0; i < v.length; i++) o[i] = ${element}(v[i])`,
        `v = o`,
      )
      break
    }
    case 'object':
      out.push(...objectBody(schema, where))
      break
    case 'record':
      out.push(...recordBody(schema, where))
      break
    case 'union':
      out.push(...unionBody(schema, where))
      break
    default:
      fail(where, `a zod ${String(def.type)}`)
  }
  // A string format (url, datetime) is both the schema and its first check, as zod runs it.
  const ownChecks: ZodInternal[] = schema._zod.traits.has('$ZodCheck') ? [schema] : []
  for (const check of [...ownChecks, ...(def.checks ?? [])]) out.push(...checkCode(check, where))
  out.push('return v')
  return out.join('\n')
}

function objectBody(schema: ZodInternal, where: string): string[] {
  const def = schema._zod.def
  const shape = def.shape
  if (Object.getOwnPropertySymbols(shape).length > 0) fail(where, 'a symbol key')
  const keys = Object.keys(shape)
  const out = [`if (typeof v !== 'object' || v === null || Array.isArray(v)) throw NO`]
  const catchall = def.catchall
  if (catchall) {
    if (catchall._zod.def.type !== 'never') fail(where, 'an object with a catchall other than never (strict)')
    // Strict: a key outside the shape is an issue (unrecognized_keys), __proto__ included.
    out.push(`for (const k in v) if (!${constant(`new Set(${JSON.stringify(keys)})`)}.has(k)) throw NO`)
  }
  out.push('const o: any = {}')
  for (const key of keys) {
    if (key === '__proto__') fail(where, 'a __proto__ key')
    const field = shape[key]
    const parse = fn(field, where ? `${where}.${key}` : key)
    const k = JSON.stringify(key)
    const {optin, optout} = field._zod
    // handlePropertyResult in zod's schemas.js: what an absent key contributes depends on whether the
    // field may be absent (optin) and whether its output may be (optout).
    let absent: string
    if (optin === undefined) absent = 'throw NO'
    else if (optout === 'optional' && optin === 'optional') absent = ''
    else if (optout === 'optional')
      absent = `let r: any\ntry { r = ${parse}(undefined) } catch (e) { if (e !== NO) throw e; r = undefined }\nif (r !== undefined) o[${k}] = r`
    else absent = `o[${k}] = ${parse}(undefined)`
    out.push(`if (${k} in v) o[${k}] = ${parse}(v[${k}])`, absent ? `else {\n${absent}\n}` : '')
  }
  out.push('v = o')
  return out.filter(Boolean)
}

function recordBody(schema: ZodInternal, where: string): string[] {
  const def = schema._zod.def
  const keyType = def.keyType
  if (def.mode === 'loose' || def.partial) fail(where, `a ${def.mode === 'loose' ? 'loose' : 'partial'} record`)
  const key = fn(keyType, `${where}<key>`)
  const value = fn(def.valueType, `${where}.*`)
  const out = [
    `if (typeof v !== 'object' || v === null || Array.isArray(v) || (Object.getPrototypeOf(v) !== Object.prototype && Object.getPrototypeOf(v) !== null)) throw NO`,
    'const o: any = {}',
  ]
  const values =
    keyType._zod.def.type === 'enum' ? (keyType as unknown as {_zod: {values: Set<unknown>}})._zod.values : undefined
  if (values) {
    // A record keyed by an enum wants every key, in the enum's order, and no other.
    const list = [...values]
    if (!list.every((x) => typeof x === 'string' && x !== '__proto__'))
      fail(where, 'an enum key that is not a plain string')
    out.push(`for (const k in v) if (!${constant(`new Set(${JSON.stringify(list)})`)}.has(k)) throw NO`)
    for (const k of list) out.push(`o[${JSON.stringify(k)}] = ${value}(v[${JSON.stringify(k)}])`)
  } else {
    if (!['string', 'enum', 'literal'].includes(keyType._zod.def.type) && !(keyType._zod.def.type === 'pipe'))
      fail(where, `a record keyed by a zod ${String(keyType._zod.def.type)}`)
    out.push(
      `for (const k of Object.keys(v)) {`,
      `if (k === '__proto__') continue`,
      `const ok = ${key}(k)`,
      `if (typeof ok !== 'string' || ok === '__proto__') throw NO`,
      `o[ok] = ${value}(v[k])`,
      `}`,
    )
  }
  out.push('v = o')
  return out
}

function unionBody(schema: ZodInternal, where: string): string[] {
  const def = schema._zod.def
  const options = def.options
  if (def.inclusive === false && def.discriminator === undefined) fail(where, 'an exclusive union')
  if (def.discriminator !== undefined) {
    if (def.unionFallback) fail(where, 'a discriminated union with unionFallback')
    const cases: string[] = []
    options.forEach((option, i) => {
      const values = option._zod.propValues?.[def.discriminator as string]
      if (!values || values.size === 0)
        fail(where, `discriminated union option ${i} without a literal ${def.discriminator}`)
      const parse = fn(option, `${where}<${def.discriminator}>`)
      for (const value of values) {
        if (typeof value !== 'string') fail(where, 'a discriminator value that is not a string')
        cases.push(`case ${JSON.stringify(value)}: return ${parse}(v)`)
      }
    })
    // Checks of the union itself would run on the option's output: none are allowed here.
    if ((def.checks ?? []).length > 0) fail(where, 'checks on a discriminated union')
    return [
      `if (typeof v !== 'object' || v === null || Array.isArray(v)) throw NO`,
      `switch (v[${JSON.stringify(def.discriminator)}]) {`,
      ...cases,
      `default: throw NO`,
      `}`,
    ]
  }
  if ((def.checks ?? []).length > 0) fail(where, 'checks on a union')
  // zod returns the first option that parses without an issue.
  return [
    ...options.map(
      (option, i) => `try { return ${fn(option, `${where}|${i}`)}(v) } catch (e) { if (e !== NO) throw e }`,
    ),
    'throw NO',
  ]
}

function checkCode(check: ZodInternal, where: string): string[] {
  const def = check._zod.def
  switch (def.check) {
    case 'describe':
    case 'meta':
      return []
    case 'min_length':
      return [`if (v.length < ${Number(def.minimum)}) throw NO`]
    case 'max_length':
      return [`if (v.length > ${Number(def.maximum)}) throw NO`]
    case 'length_equals':
      return [`if (v.length !== ${Number(def.length)}) throw NO`]
    case 'greater_than':
      return [`if (!(v ${def.inclusive ? '>=' : '>'} ${Number(def.value)})) throw NO`]
    case 'less_than':
      return [`if (!(v ${def.inclusive ? '<=' : '<'} ${Number(def.value)})) throw NO`]
    case 'number_format':
      if (def.format === 'safeint') return ['if (!Number.isSafeInteger(v)) throw NO']
      return fail(where, `a number format ${String(def.format)}`)
    case 'string_format':
      return stringFormat(check, where)
    case 'custom': {
      if (def.type === 'custom') {
        // .refine(fn): the function is the check.
        const name = checkNames.get(def.fn)
        if (!name) fail(where, 'a refinement that is not an export of src/config/schema-checks.ts')
        return [`if (!checks.${name}(v)) throw NO`]
      }
      const refinement = superRefinements.get(check)
      const name = refinement && checkNames.get(refinement)
      if (!name) fail(where, 'a superRefine or check that is not made with superRefined() and schema-checks.ts')
      return [`checks.${name}(v, FAIL_ON_ISSUE)`]
    }
    default:
      return fail(where, `a zod check ${String(def.check)}`)
  }
}

function stringFormat(check: ZodInternal, where: string): string[] {
  const def = check._zod.def
  switch (def.format) {
    case 'url':
      // $ZodURL without hostname, protocol or normalize: URL.canParse of the trimmed text, whose
      // output is that text without tabs and line breaks.
      if ('normalize' in def || 'hostname' in def || 'protocol' in def) fail(where, 'a url with options')
      return [`v = v.trim()`, `if (!URL.canParse(v)) throw NO`, `v = v.replace(/[\\t\\n\\r]/g, '')`]
    case 'starts_with':
      return [`if (!v.startsWith(${JSON.stringify(def.prefix)})) throw NO`]
    case 'ends_with':
      return [`if (!v.endsWith(${JSON.stringify(def.suffix)})) throw NO`]
    case 'regex':
    case 'datetime':
    case 'date':
    case 'time': {
      const pattern = def.pattern as RegExp
      if (!(pattern instanceof RegExp)) fail(where, `a ${def.format} without a pattern`)
      const regex = constant(String(pattern))
      return pattern.global || pattern.sticky
        ? [`${regex}.lastIndex = 0`, `if (!${regex}.test(v)) throw NO`]
        : [`if (!${regex}.test(v)) throw NO`]
    }
    default:
      return fail(where, `a string format ${String(def.format)}`)
  }
}

const root = fn(configSchema as unknown as ZodInternal, '')
const source = `// Generated by scripts/gen-config-validator.ts from the zod schema in ./schema.ts: do not edit.
// \`npm run build\` regenerates it, and CI fails when it drifts from the schema.
/* eslint-disable */
import * as checks from './schema-checks.js'
import type {RetailOpsConfig} from './schema.js'

/** Thrown (and caught below) where zod would report an issue: the file is not valid as it stands. */
const NO = Symbol('not valid')

/** A superRefine check's context: any issue it adds makes the file one for zod to explain. */
const FAIL_ON_ISSUE: checks.IssueSink = {
  addIssue() {
    throw NO
  },
}

/**
 * retailops.yaml's data (parsed YAML) as the schema's parse returns it (defaults filled in), when
 * the schema accepts it; undefined when it does not, or when a refinement throws on it: then zod
 * parses it and reports every problem (./parse.ts).
 */
export function validateConfig(data: unknown): RetailOpsConfig | undefined {
  try {
    return ${root}(data)
  } catch {
    return undefined
  }
}

${[...constants].map(([code, name]) => `const ${name} = ${code}`).join('\n')}

${bodies.join('\n\n')}
`
const config = await prettier.resolveConfig(OUT)
writeFileSync(OUT, await prettier.format(source, {...config, filepath: OUT}))
console.log(`gen-config-validator: ${bodies.length} parse functions, ${constants.size} constants -> ${OUT}`)
