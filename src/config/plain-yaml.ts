// retailops.yaml read the quick way, for the compiled validator (./validate-config.generated.ts):
// js-yaml without positions costs a tenth of the yaml library's document parser, which the error
// path (./parse.ts) keeps for its line numbers. This reader must never yield data the yaml library
// would read differently, so it gives up (undefined) on everything where the two could differ, and
// the file then goes the full way: test/unit/config/plain-yaml.test.ts checks the two against each
// other.
import {type EventType, FAILSAFE_SCHEMA, load, type State, Type} from 'js-yaml'

/**
 * YAML 1.2's core schema as the yaml library resolves plain scalars (yaml/dist/schema/core: null,
 * bool, then int as octal, decimal, hex, then float as .inf/.nan, exponent, decimal), so that
 * `0o17`, `.5`, `1e3` or `True` mean the same here; js-yaml's own core schema differs (binary 0b…,
 * no -.5). Quoted scalars are strings in both. One type per tag: js-yaml keeps only the last of
 * several with one tag.
 */
const INT = [/^0o[0-7]+$/, /^[-+]?[0-9]+$/, /^0x[0-9a-fA-F]+$/]
const FLOAT = [
  /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/,
  /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/,
  /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/,
]

/** Set when a null was resolved, a key included (js-yaml would make it the key "null", the yaml library ""). */
let resolvedNull = false

const scalar = (tag: string, resolve: (text: string) => boolean, construct: (text: string) => unknown) =>
  new Type(`tag:yaml.org,2002:${tag}`, {kind: 'scalar', resolve, construct})

const CORE = FAILSAFE_SCHEMA.extend({
  implicit: [
    scalar(
      'null',
      (text) => /^(?:~|[Nn]ull|NULL)?$/.test(text),
      () => {
        resolvedNull = true
        return null
      },
    ),
    scalar(
      'bool',
      (text) => /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/.test(text),
      (text) => text[0] === 't' || text[0] === 'T',
    ),
    scalar(
      'int',
      (text) => INT.some((r) => r.test(text)),
      (text) =>
        INT[0].test(text)
          ? parseInt(text.substring(2), 8)
          : INT[1].test(text)
            ? parseInt(text, 10)
            : parseInt(text.substring(2), 16),
    ),
    scalar(
      'float',
      (text) => FLOAT.some((r) => r.test(text)),
      (text) =>
        !FLOAT[0].test(text)
          ? parseFloat(text)
          : text.slice(-3).toLowerCase() === 'nan'
            ? Number.NaN
            : text[0] === '-'
              ? Number.NEGATIVE_INFINITY
              : Number.POSITIVE_INFINITY,
    ),
  ],
})

/**
 * Where the two readers could part, besides anchors (below): tags, complex keys, directives (%YAML
 * 1.1 changes the scalars' meaning). Every tag follows a space, a flow indicator or a line start;
 * a string that merely looks like one only costs the quick path.
 */
const UNCOMMON = /(?:^|[\s[{,])!\S|(?:^|\s)\?(?:\s|$)|^%/m

/** Set when a node carries an anchor: the yaml library limits how far aliases expand, js-yaml shares them. */
let anchored = false

function noteAnchor(event: EventType, state: State): void {
  // js-yaml's state holds the closing node's anchor; its published type does not declare it.
  const {anchor} = state as State & {anchor?: string | null}
  if (event === 'close' && anchor !== null && anchor !== undefined) anchored = true
}

/**
 * The file's data when it is a plain mapping without nulls, read exactly as the yaml library
 * would; undefined when it is not, or could be read otherwise. A null is given up on rather than
 * resolved: the yaml library turns a null key into "", js-yaml into "null", and no valid
 * configuration holds one.
 */
export function readPlainYaml(text: string): Record<string, unknown> | undefined {
  if (UNCOMMON.test(text)) return undefined
  let data: unknown
  resolvedNull = false
  anchored = false
  try {
    // Duplicate keys, several documents and an alias without an anchor throw: the full path reports them.
    data = load(text, {schema: CORE, listener: noteAnchor})
    // (In the try too: nesting deep enough to exhaust the stack goes the full way, which reports it.)
    if (anchored || resolvedNull || typeof data !== 'object' || data === null || Array.isArray(data) || holdsNull(data))
      return undefined
  } catch {
    return undefined
  }
  return data as Record<string, unknown>
}

function holdsNull(value: unknown): boolean {
  if (value === null) return true
  if (typeof value !== 'object') return false
  for (const item of Array.isArray(value) ? value : Object.values(value)) if (holdsNull(item)) return true
  return false
}
