// PromQL text built from values: one way to quote label values for every query retailops writes.

/** A label value as it goes between the double quotes of a PromQL string (backslash, quote and newline escaped). */
export function promEscape(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/** A PromQL string literal for a label value. */
export function promString(value: string): string {
  return `"${promEscape(value)}"`
}

export type MatchOp = '=' | '=~' | '!=' | '!~'

/** A label matcher list {a="x",b=~"y"} from pairs; empty pairs give "". */
export function matchers(pairs: [string, string, MatchOp?][]): string {
  if (pairs.length === 0) return ''
  return `{${pairs.map(([k, v, op]) => `${k}${op ?? '='}${promString(v)}`).join(',')}}`
}
