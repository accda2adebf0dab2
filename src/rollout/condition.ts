/**
 * Analysis conditions such as "result < 0.05" or "result <= stable * 1.2 || result < 0.01".
 * A small, safe expression language (no eval): numbers, the variables `result`, `canary` (the
 * same value) and `stable`, + - * /, comparisons, && || !, parentheses and isNaN(x).
 */

export type Vars = Record<string, number | null | undefined>

type Token = {kind: 'num'; value: number} | {kind: 'id'; value: string} | {kind: 'op'; value: string}

const OPS = ['&&', '||', '<=', '>=', '==', '!=', '<', '>', '+', '-', '*', '/', '!', '(', ')']

export class ConditionError extends Error {}

function tokenize(text: string): Token[] {
  const tokens: Token[] = []
  let i = 0
  while (i < text.length) {
    const ch = text[i]
    if (/\s/.test(ch)) {
      i++
      continue
    }
    const num = /^(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?/.exec(text.slice(i))
    if (num) {
      tokens.push({kind: 'num', value: Number(num[0])})
      i += num[0].length
      continue
    }
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i))
    if (id) {
      tokens.push({kind: 'id', value: id[0]})
      i += id[0].length
      continue
    }
    const op = OPS.find((o) => text.startsWith(o, i))
    if (!op) throw new ConditionError(`unexpected "${ch}" at position ${i + 1}`)
    tokens.push({kind: 'op', value: op})
    i += op.length
  }
  return tokens
}

type Node =
  | {type: 'num'; value: number}
  | {type: 'var'; name: string}
  | {type: 'call'; name: string; arg: Node}
  | {type: 'unary'; op: string; arg: Node}
  | {type: 'binary'; op: string; left: Node; right: Node}

const PRECEDENCE: Record<string, number> = {
  '||': 1,
  '&&': 2,
  '==': 3,
  '!=': 3,
  '<': 4,
  '<=': 4,
  '>': 4,
  '>=': 4,
  '+': 5,
  '-': 5,
  '*': 6,
  '/': 6,
}
const VARIABLES = new Set(['result', 'canary', 'stable'])

function parse(tokens: Token[]): Node {
  let pos = 0
  const peek = () => tokens[pos]
  const expectOp = (value: string) => {
    const t = tokens[pos]
    if (t?.kind !== 'op' || t.value !== value) throw new ConditionError(`expected "${value}"`)
    pos++
  }
  const primary = (): Node => {
    const t = tokens[pos++]
    if (!t) throw new ConditionError('unexpected end of condition')
    if (t.kind === 'num') return {type: 'num', value: t.value}
    if (t.kind === 'id') {
      if (t.value === 'isNaN') {
        expectOp('(')
        const arg = binary(0)
        expectOp(')')
        return {type: 'call', name: 'isNaN', arg}
      }
      if (!VARIABLES.has(t.value)) throw new ConditionError(`unknown name "${t.value}" (use result, canary or stable)`)
      return {type: 'var', name: t.value}
    }
    if (t.value === '(') {
      const inner = binary(0)
      expectOp(')')
      return inner
    }
    if (t.value === '-' || t.value === '!') return {type: 'unary', op: t.value, arg: primary()}
    throw new ConditionError(`unexpected "${t.value}"`)
  }
  const binary = (min: number): Node => {
    let left = primary()
    for (;;) {
      const t = peek()
      const prec = t?.kind === 'op' ? PRECEDENCE[t.value] : undefined
      if (prec === undefined || prec < min) break
      pos++
      const right = binary(prec + 1)
      left = {type: 'binary', op: String(t.value), left, right}
    }
    return left
  }
  const node = binary(0)
  if (pos < tokens.length) throw new ConditionError(`unexpected "${String((tokens[pos] as {value: unknown}).value)}"`)
  return node
}

/** Thrown while evaluating when a variable the condition needs has no value. */
export class MissingValueError extends Error {
  constructor(readonly variable: string) {
    super(`${variable} has no value`)
  }
}

function evaluate(node: Node, vars: Vars): number | boolean {
  switch (node.type) {
    case 'num':
      return node.value
    case 'var': {
      const v = node.name === 'canary' ? (vars.canary ?? vars.result) : vars[node.name]
      if (v === null || v === undefined) throw new MissingValueError(node.name)
      return v
    }
    case 'call':
      return Number.isNaN(Number(evaluate(node.arg, vars)))
    case 'unary': {
      const v = evaluate(node.arg, vars)
      return node.op === '!' ? !v : -Number(v)
    }
    case 'binary': {
      if (node.op === '&&') return Boolean(evaluate(node.left, vars)) && Boolean(evaluate(node.right, vars))
      if (node.op === '||') return Boolean(evaluate(node.left, vars)) || Boolean(evaluate(node.right, vars))
      const a = Number(evaluate(node.left, vars))
      const b = Number(evaluate(node.right, vars))
      switch (node.op) {
        case '<':
          return a < b
        case '<=':
          return a <= b
        case '>':
          return a > b
        case '>=':
          return a >= b
        case '==':
          return a === b
        case '!=':
          return a !== b
        case '+':
          return a + b
        case '-':
          return a - b
        case '*':
          return a * b
        case '/':
          return a / b
      }
    }
  }
  throw new ConditionError('bad expression')
}

export interface CompiledCondition {
  source: string
  /** True or false; throws MissingValueError when a variable it needs is null. */
  test(vars: Vars): boolean
  variables: string[]
}

/** Parses once; throws ConditionError with a readable reason for a malformed condition. */
export function compileCondition(source: string): CompiledCondition {
  const tokens = tokenize(source)
  const tree = parse(tokens)
  const variables = [
    ...new Set(tokens.filter((t) => t.kind === 'id' && VARIABLES.has(t.value)).map((t) => t.value as string)),
  ]
  return {source, variables, test: (vars) => Boolean(evaluate(tree, vars))}
}
