// Normalises oclif.manifest.json (commands sorted) and regenerates the generated parts of
// README.md from the build: the command reference (from
// oclif.manifest.json), the exit codes (from the policy table) and the configuration reference
// (from the schema, also written to schema/retailops.schema.json). CI fails when they drift.
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'

const {ExitCode, EXIT_CODE_MEANINGS} = await import('../dist/src/errors/exit-codes.js')
const {jsonSchema} = await import('../dist/src/config/schema.js')
const manifest = JSON.parse(readFileSync('oclif.manifest.json', 'utf8'))
// oclif lists commands in the order the file system returns them, which differs between clones:
// sort them, so the committed manifest is the same wherever it is built.
manifest.commands = Object.fromEntries(Object.entries(manifest.commands).sort(([a], [b]) => a.localeCompare(b)))
writeFileSync('oclif.manifest.json', `${JSON.stringify(manifest, null, 2)}\n`)

const schema = jsonSchema()
mkdirSync('schema', {recursive: true})
writeFileSync('schema/retailops.schema.json', `${JSON.stringify(schema, null, 2)}\n`)

const esc = (s) =>
  String(s ?? '')
    .replace(/\|/g, '\\|')
    .replace(/\n/g, ' ')

function commandsSection() {
  const ids = Object.keys(manifest.commands).sort()
  const out = []
  out.push(ids.map((id) => `* [\`retailops ${id}\`](#retailops-${id.replace(/[: ]/g, '-')})`).join('\n'), '')
  for (const id of ids) {
    const c = manifest.commands[id]
    out.push(`### \`retailops ${id}\``, '', c.summary ?? c.description ?? '', '')
    if (c.description && c.summary) out.push(c.description, '')
    const args = Object.values(c.args ?? {})
    const usage = [
      `retailops ${id}`,
      ...args.map((a) => (a.required ? a.name.toUpperCase() : `[${a.name.toUpperCase()}]`)),
    ]
    out.push('```', usage.join(' ') + ' [FLAGS]', '```', '')
    const flags = Object.values(c.flags ?? {}).filter((f) => !f.hidden && f.helpGroup !== 'GLOBAL' && f.name !== 'json')
    if (args.length + flags.length > 0) {
      out.push('| argument or flag | description |', '| --- | --- |')
      for (const a of args)
        out.push(`| \`${a.name.toUpperCase()}\` | ${esc(a.description)}${a.required ? ' (required)' : ''} |`)
      for (const f of flags) {
        const name = `${f.char ? `-${f.char}, ` : ''}--${f.name}${f.type === 'option' ? '=VALUE' : ''}`
        const extra = [
          f.options ? `one of: ${f.options.join(', ')}` : '',
          f.default !== undefined && f.default !== false ? `default: ${JSON.stringify(f.default)}` : '',
          f.required ? 'required' : '',
        ]
          .filter(Boolean)
          .join('; ')
        out.push(`| \`${name}\` | ${esc(f.description)}${extra ? ` (${extra})` : ''} |`)
      }
      out.push('')
    }
    // Every command declares its exit codes (static exitCodes, checked by test/unit/cli/exit-codes.test.ts).
    if (c.exitCodes?.length)
      out.push(
        `Exit codes: ${c.exitCodes.map((n) => `${ExitCode[n]} \`${n}\``).join(', ')} ([meanings](#exit-codes)).`,
        '',
      )
    if (c.examples?.length) {
      out.push('Examples:', '', '```sh')
      for (const e of c.examples) {
        const text = typeof e === 'string' ? e : e.command
        out.push(text.replace(/<%= config.bin %>/g, 'retailops').replace(/<%= command.id %>/g, id))
      }
      out.push('```', '')
    }
  }
  const global = Object.values(manifest.commands[ids[0]]?.flags ?? {}).filter((f) => f.helpGroup === 'GLOBAL')
  out.push(
    '### Flags every command takes',
    '',
    '| flag | description |',
    '| --- | --- |',
    '| `--json` | One JSON document on stdout (`{status, result, warnings}` or `{status, error, warnings}`); progress and logs go to stderr. |',
  )
  for (const f of global)
    out.push(
      `| \`${f.char ? `-${f.char}, ` : ''}--${f.name}\` | ${esc(f.description)}${f.env ? ` (env \`${f.env}\`)` : ''} |`,
    )
  return out.join('\n')
}

function exitCodesSection() {
  const rows = Object.entries(ExitCode).map(
    ([name, code]) => `| ${code} | \`${name}\` | ${esc(EXIT_CODE_MEANINGS[name])} |`,
  )
  return ['| code | name | meaning |', '| --- | --- | --- |', ...rows].join('\n')
}

function configSection() {
  const rows = []
  const walk = (node, prefix, depth) => {
    if (!node || depth > 2) return
    const props = node.properties ?? {}
    for (const [key, value] of Object.entries(props)) {
      const p = prefix ? `${prefix}.${key}` : key
      const target =
        value.additionalProperties &&
        typeof value.additionalProperties === 'object' &&
        value.additionalProperties.properties
          ? value.additionalProperties
          : value.items?.properties
            ? value.items
            : value
      const type =
        value.type ??
        (value.anyOf
          ? value.anyOf
              .map((a) => a.type ?? a.const)
              .filter(Boolean)
              .join(' or ')
          : value.enum
            ? 'enum'
            : '')
      const suffix = target === value.additionalProperties ? '.<name>' : target === value.items ? '[]' : ''
      const desc = value.description ?? target.description ?? ''
      const enums = value.enum ? ` One of: ${value.enum.join(', ')}.` : ''
      rows.push(`| \`${p}${suffix}\` | ${esc(type)} | ${esc(desc)}${enums} |`)
      if (target !== value || value.properties) walk(target, `${p}${suffix}`, depth + 1)
    }
  }
  walk(schema, '', 0)
  return ['| key | type | description |', '| --- | --- | --- |', ...rows].join('\n')
}

let readme = readFileSync('README.md', 'utf8')
for (const [name, body] of [
  ['commands', commandsSection()],
  ['exit-codes', exitCodesSection()],
  ['config', configSection()],
]) {
  const re = new RegExp(`(<!-- ${name}:start -->)[\\s\\S]*?(<!-- ${name}:end -->)`)
  if (!re.test(readme)) throw new Error(`README.md lacks the <!-- ${name}:start --> / <!-- ${name}:end --> markers`)
  readme = readme.replace(re, `$1\n${body}\n$2`)
}
writeFileSync('README.md', readme)
