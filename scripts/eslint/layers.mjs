// ESLint rule retailops/layers: the import rule of docs/architecture.md for files under src/.
//
// Every folder src/<name>/ is either infrastructure (one client per external system, plus the
// vocabulary every concept shares) or a concept. Infrastructure may import infrastructure; a
// concept may import infrastructure and what `conceptImports` lists for it; nothing under src/
// imports commands/. Known violations are listed as [importing file, imported file] pairs
// (`exceptions`): such an import passes, and a listed pair whose import is gone is reported,
// so the list can only shrink.
//
// eslint-plugin-import's no-restricted-paths can say "folder A may not import folder B", but
// not "this one file pair is a known exception" nor "this exception is stale", which is what
// lets CI pass today while forbidding every new crossing.
import path from 'node:path'

const SOURCE_EXTENSIONS = /\.(?:js|mjs|ts|mts)$/

/** `src/rollout/kube.js` and `src/rollout/kube.ts` name the same module. */
function moduleKey(file) {
  return file.replace(SOURCE_EXTENSIONS, '')
}

function folderOf(relative) {
  const parts = relative.split('/')
  return parts[0] === 'src' && parts.length > 2 ? parts[1] : undefined
}

export default {
  meta: {
    type: 'problem',
    docs: {description: 'src/ layers: concept folders import only infrastructure (docs/architecture.md)'},
    schema: [
      {
        type: 'object',
        properties: {
          infrastructure: {type: 'array', items: {type: 'string'}},
          conceptImports: {type: 'object', additionalProperties: {type: 'array', items: {type: 'string'}}},
          exceptions: {type: 'array', items: {type: 'array', items: {type: 'string'}, minItems: 2, maxItems: 2}},
        },
        required: ['infrastructure'],
        additionalProperties: false,
      },
    ],
    messages: {
      conceptToConcept:
        'src/{{from}} is a concept and may not import src/{{to}} ({{imported}}): move what both need down to infrastructure ({{infrastructure}}), or call it from the command. See docs/architecture.md, Layers.',
      infrastructureToConcept:
        'src/{{from}} is infrastructure and may not import the concept src/{{to}} ({{imported}}): infrastructure never depends on a concept. See docs/architecture.md, Layers.',
      outsideSrc: 'src/ may not import {{imported}}: src/ never depends on commands/, test/ or scripts/.',
      staleException:
        'The layer exception {{from}} -> {{to}} no longer occurs: delete it from the list in eslint.config.js (the list only shrinks).',
    },
  },
  create(context) {
    const [{infrastructure, conceptImports = {}, exceptions = []}] = context.options
    const infra = new Set(infrastructure)
    const root = context.cwd
    const file = path.relative(root, context.filename).split(path.sep).join('/')
    const from = folderOf(file)
    if (!from) return {}

    const listed = new Map()
    for (const [importing, imported] of exceptions) {
      if (moduleKey(importing) === moduleKey(file)) listed.set(moduleKey(imported), `${importing} -> ${imported}`)
    }
    const seen = new Set()

    function check(node, source) {
      if (!source || typeof source.value !== 'string' || !source.value.startsWith('.')) return
      const target = path
        .relative(root, path.resolve(path.dirname(context.filename), source.value))
        .split(path.sep)
        .join('/')
      const imported = source.value
      if (!target.startsWith('src/')) {
        context.report({node, messageId: 'outsideSrc', data: {imported: target}})
        return
      }
      const to = folderOf(target)
      if (!to || to === from) return
      let messageId
      if (infra.has(from)) messageId = infra.has(to) ? undefined : 'infrastructureToConcept'
      else if (!infra.has(to) && !(conceptImports[from] ?? []).includes(to)) messageId = 'conceptToConcept'
      if (!messageId) return
      if (listed.has(moduleKey(target))) {
        seen.add(moduleKey(target))
        return
      }
      context.report({
        node,
        messageId,
        data: {from, to, imported, infrastructure: [...infra].map((name) => `src/${name}`).join(', ')},
      })
    }

    return {
      ImportDeclaration: (node) => check(node, node.source),
      ExportNamedDeclaration: (node) => check(node, node.source),
      ExportAllDeclaration: (node) => check(node, node.source),
      ImportExpression: (node) => check(node, node.source.type === 'Literal' ? node.source : undefined),
      'Program:exit'(program) {
        for (const [key, pair] of listed) {
          if (!seen.has(key)) {
            const [importing, imported] = pair.split(' -> ')
            context.report({
              node: program,
              loc: {line: 1, column: 0},
              messageId: 'staleException',
              data: {from: importing, to: imported},
            })
          }
        }
      },
    }
  },
}
