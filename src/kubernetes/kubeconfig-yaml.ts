/**
 * The YAML kubectl, kind, kwok and the cloud CLIs write kubeconfigs in: block mappings and
 * sequences, plain or simply quoted scalars, `{}` and `[]`. Reading that subset here spares every
 * command that talks to a cluster loading and warming up the yaml library (~15 ms of CPU before
 * its first request). Anything outside the subset (anchors, flow collections with content,
 * multi-line or escaped scalars, numbers, comments after a value, duplicate keys, tabs, several
 * documents) answers undefined, and the caller parses the file with the yaml library as before:
 * a value this reader answers is always the one the library would (test/unit/kubernetes/
 * kubeconfig-yaml.test.ts compares them).
 */
export function parseSimpleYaml(text: string): unknown {
  const lines: {indent: number; text: string}[] = []
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    const content = line.trimStart()
    if (content === '' || content.startsWith('#')) continue
    const indentation = line.slice(0, line.length - content.length)
    if (indentation.includes('\t') || /[\t ]$/.test(content) || /[^\x20-\x7e]/.test(content)) return undefined
    lines.push({indent: indentation.length, text: content})
  }
  if (lines.length === 0 || lines[0].indent !== 0) return undefined
  const reader = new BlockReader(lines)
  try {
    const value = reader.block(0)
    return reader.done() ? value : undefined
  } catch (error) {
    if (error instanceof OutsideSubset) return undefined
    throw error
  }
}

class OutsideSubset extends Error {}

const outside = (): never => {
  throw new OutsideSubset()
}

/** Keys the library reads as the same string: no number, no null (which it makes ''), nothing quoted. */
const KEY = /^[A-Za-z_][A-Za-z0-9_./-]*$/
const NULL = /^(null|Null|NULL|~)$/

class BlockReader {
  private at = 0

  constructor(private readonly lines: {indent: number; text: string}[]) {}

  done(): boolean {
    return this.at === this.lines.length
  }

  /** The mapping or sequence whose lines start at this indentation. */
  block(indent: number): unknown {
    const first = this.lines[this.at]
    if (!first || first.indent !== indent) return outside()
    return isItem(first.text) ? this.sequence(indent) : this.mapping(indent, first.text)
  }

  private sequence(indent: number): unknown[] {
    const items: unknown[] = []
    while (this.at < this.lines.length && this.lines[this.at].indent === indent && isItem(this.lines[this.at].text)) {
      const rest = this.lines[this.at].text.slice(2).trimStart()
      if (rest === '' || isItem(rest)) return outside()
      const offset = indent + (this.lines[this.at].text.length - rest.length)
      if (splitPair(rest)) {
        // `- key: value` opens a mapping whose further keys are indented like its first.
        this.lines[this.at] = {indent: offset, text: rest}
        items.push(this.mapping(offset, rest))
      } else {
        this.at++
        items.push(scalar(rest))
      }
    }
    return items
  }

  private mapping(indent: number, firstText: string): Record<string, unknown> {
    if (!splitPair(firstText)) return outside()
    const map: Record<string, unknown> = {}
    while (this.at < this.lines.length && this.lines[this.at].indent === indent) {
      const pair = splitPair(this.lines[this.at].text)
      if (!pair || Object.hasOwn(map, pair.key)) return outside()
      this.at++
      if (pair.value !== '') {
        map[pair.key] = scalar(pair.value)
        continue
      }
      const next = this.lines[this.at]
      if (next && next.indent > indent) map[pair.key] = this.block(next.indent)
      // kubectl writes a mapping's sequence at the key's own indentation.
      else if (next && next.indent === indent && isItem(next.text)) map[pair.key] = this.sequence(indent)
      else map[pair.key] = null
    }
    if (this.at < this.lines.length && this.lines[this.at].indent > indent) return outside()
    return map
  }
}

function isItem(text: string): boolean {
  return text === '-' || text.startsWith('- ')
}

function splitPair(text: string): {key: string; value: string} | undefined {
  const colon = text.indexOf(':')
  if (colon <= 0) return undefined
  const key = text.slice(0, colon)
  const after = text.slice(colon + 1)
  if (!KEY.test(key) || NULL.test(key) || (after !== '' && !after.startsWith(' '))) return undefined
  return {key, value: after.trim()}
}

/** A scalar of the subset, resolved as YAML 1.2's core schema (the yaml library's default) would. */
function scalar(text: string): unknown {
  if (text === '{}') return {}
  if (text === '[]') return []
  if (text.startsWith('"')) {
    const inner = text.slice(1, -1)
    if (text.length < 2 || !text.endsWith('"') || /["\\]/.test(inner)) return outside()
    return inner
  }
  if (text.startsWith("'")) {
    const inner = text.slice(1, -1)
    if (text.length < 2 || !text.endsWith("'") || /'/.test(inner.replaceAll("''", ''))) return outside()
    return inner.replaceAll("''", "'")
  }
  if (NULL.test(text)) return null
  if (/^(true|True|TRUE)$/.test(text)) return true
  if (/^(false|False|FALSE)$/.test(text)) return false
  // Numbers, special floats and everything that could start another YAML construct: the library's.
  if (/^[-+.0-9?:,[\]{}#&*!|>'"%@`]/.test(text) || text.includes(': ') || text.includes(' #') || text.endsWith(':'))
    return outside()
  return text
}
