/**
 * One page of a Kubernetes list response, read item by item: the bytes of each element of the
 * top-level "items" array are found by a scan of the page (brackets counted outside strings) and
 * parsed on their own, so only one item's object tree is alive at a time. Parsing a 500-pod page
 * whole makes a tree of several MB that lives until the page is done, is promoted to the old
 * generation and grows the heap; items parsed one by one die young. Everything at the top level
 * other than "items" (kind, apiVersion, metadata with the continue token) is parsed as usual.
 *
 * Byte-level scanning is safe in UTF-8: every byte of a multi-byte character is 0x80 or above,
 * so it is never taken for a quote, backslash or bracket.
 */
const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d
const COLON = 0x3a

export interface ListPageMeta {
  kind?: string
  apiVersion?: string
  metadata?: {continue?: string; resourceVersion?: string; remainingItemCount?: number}
}

/** Calls `each` with every item of the page, parsed; answers the rest of the page (metadata and all). */
export function forEachListItem<T>(page: Buffer, each: (item: T) => void): ListPageMeta {
  const n = page.length
  let i = skipSpace(page, 0)
  if (page[i] !== OPEN_BRACE) return JSON.parse(page.toString('utf8')) as ListPageMeta // not a list: let JSON.parse say why
  const rest: string[] = []
  i += 1
  for (;;) {
    i = skipSpace(page, i)
    if (page[i] === CLOSE_BRACE) break
    if (page[i] === 0x2c /* , */) {
      i += 1
      continue
    }
    if (page[i] !== QUOTE) throw new SyntaxError(`list page: expected a key at byte ${i}`)
    const keyEnd = endOfString(page, i)
    const key = page.toString('utf8', i, keyEnd)
    i = skipSpace(page, keyEnd)
    if (page[i] !== COLON) throw new SyntaxError(`list page: expected ':' at byte ${i}`)
    i = skipSpace(page, i + 1)
    if (key === '"items"' && page[i] === OPEN_BRACKET) {
      i += 1
      for (;;) {
        i = skipSpace(page, i)
        if (page[i] === CLOSE_BRACKET) {
          i += 1
          break
        }
        if (page[i] === 0x2c) {
          i += 1
          continue
        }
        const end = endOfValue(page, i)
        each(JSON.parse(page.toString('utf8', i, end)) as T)
        i = end
      }
      rest.push(`${key}:null`)
    } else {
      const end = endOfValue(page, i)
      rest.push(`${key}:${page.toString('utf8', i, end)}`)
      i = end
    }
    if (i >= n) throw new SyntaxError('list page: unexpected end')
  }
  return JSON.parse(`{${rest.join(',')}}`) as ListPageMeta
}

function skipSpace(b: Buffer, i: number): number {
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x09)) i++
  return i
}

/** `i` at an opening quote: the index just past the closing one. */
function endOfString(b: Buffer, i: number): number {
  for (let j = i + 1; j < b.length; j++) {
    if (b[j] === BACKSLASH) j++
    else if (b[j] === QUOTE) return j + 1
  }
  throw new SyntaxError('list page: unterminated string')
}

/** `i` at the start of a JSON value: the index just past its end. */
function endOfValue(b: Buffer, i: number): number {
  const c = b[i]
  if (c === QUOTE) return endOfString(b, i)
  if (c === OPEN_BRACE || c === OPEN_BRACKET) {
    let depth = 0
    for (let j = i; j < b.length; j++) {
      const x = b[j]
      if (x === QUOTE) j = endOfString(b, j) - 1
      else if (x === OPEN_BRACE || x === OPEN_BRACKET) depth++
      else if (x === CLOSE_BRACE || x === CLOSE_BRACKET) {
        depth--
        if (depth === 0) return j + 1
      }
    }
    throw new SyntaxError('list page: unterminated value')
  }
  // A number, true, false or null: up to the next delimiter.
  let j = i
  while (j < b.length && b[j] !== 0x2c && b[j] !== CLOSE_BRACE && b[j] !== CLOSE_BRACKET && b[j] > 0x20) j++
  return j
}
