// The direct start of bin/run.js (src/ui/fast-path.ts `directCommand`, commands/_base/direct.ts):
// every command of the manifest bundled with esbuild into dist/direct/, code shared between them
// in chunks, together with the libraries every command loads before it runs (oclif's command
// and parser, yaml, js-yaml, zod, chalk, cli-table3; p-limit and p-retry, small ES modules the Kubernetes
// objects layer and slo's status import, which Node would otherwise resolve from node_modules
// package by package: 3-4 ms of `rollout status`'s start). Loading one file of a few hundred kilobytes costs a
// third of loading the same code as the ~300 modules Node resolves, reads and links one by one.
// Everything else stays an import of node_modules as it was: the heavy clients load (lazily)
// from there, and oclif's full start (help, plugins) uses dist/commands as before.
// The everyday commands (SOLO) also get a file each, dist/direct/solo/commands/…, which src/ui/fast-path.ts
// prefers: the runner and the command in one file, nothing split off (what they import lazily is in
// it too, initialised on first use; zod and yaml are files of their own, dist/direct/lib/, required
// when first needed): 40 files to 1, ~15 ms of CPU less on every start.
// Run by `npm run build` after tsc and `oclif manifest`; dist/ is not committed.
import {createHash} from 'node:crypto'
import {readdirSync, readFileSync, realpathSync, rmSync} from 'node:fs'
import path from 'node:path'

import {build} from 'esbuild'

/** Libraries bundled with the commands (with everything they import); any other package stays external. */
const INLINE = new Set(['@oclif/core', 'yaml', 'js-yaml', 'zod', 'chalk', 'cli-table3', 'p-limit', 'p-retry'])
/** Never bundled, even when an inlined library names it (oclif's TypeScript support is for development). */
const NEVER = new Set(['typescript', 'ts-node', 'tsx'])

/**
 * Modules of oclif the direct start never runs, though the modules it does run require them at
 * load: Config.load and plugin discovery (minimatch, picomatch, tinyglobby, lilconfig, ts-path),
 * the help classes and ejs. (Not the terminal spinner: ux builds it at load on a TTY.) Each is replaced in the
 * bundle by a stand-in that requires the real module from node_modules the first time something
 * reads from it (oclif's start from bin/run.js never uses the bundle). Keyed by the requiring file
 * inside @oclif/core and what it requires; `esModule` is the real module's __esModule flag, which
 * TypeScript's import helpers read before anything else.
 */
const DEFERRED = [
  {importer: 'lib/command.js', specifier: './config', esModule: true},
  {importer: 'lib/flags.js', specifier: './help', esModule: true},
  {importer: 'lib/errors/handle.js', specifier: '../help/index', esModule: true},
  {importer: 'lib/help/util.js', specifier: 'ejs', esModule: true},
  // Reads a flag's value from stdin (`-`) only; Node's readline is a dozen internal modules.
  {importer: 'lib/parser/parse.js', specifier: 'node:readline', esModule: false},
]
/**
 * The commands of issue 18's start-up goal, run many times a day and in scripts: each also bundled
 * whole into one file with the runner (commands/_base/direct.ts), so that a start loads one module
 * instead of the ~40 chunks its share of the split bundle is cut into (each file costs Node a
 * resolve, a read, a compile-cache lookup and a link: 0.25 ms or more). Not every command: each
 * such file holds everything its command can reach, lazily imported code too (0.5 to 1 MB).
 */
const SOLO = ['config:validate', 'slo:rules', 'dr:plan', 'rollout:status', 'render']
const oclifRoot = realpathSync('node_modules/@oclif/core')
const zodRoot = realpathSync('node_modules/zod')
const deferredFound = new Set()

/** The stand-in of one deferred module: a proxy that loads it (once) on the first read. */
function deferredModule({importer, specifier, esModule}) {
  return [
    "const {createRequire} = require('node:module')",
    "const path = require('node:path')",
    "const oclif = '@oclif/core'",
    'let real',
    // From the installed @oclif/core, as the requiring file itself would resolve it.
    `const load = () => (real ??= createRequire(path.join(path.dirname(require.resolve(oclif)), ${JSON.stringify(importer.replace(/^lib\//, ''))}))(${JSON.stringify(specifier)}))`,
    'module.exports = new Proxy({}, {',
    `  get: (_, key) => (key === '__esModule' ? ${esModule} : load()[key]),`,
    '  has: (_, key) => key in load(),',
    '  ownKeys: () => Reflect.ownKeys(load()),',
    '  getOwnPropertyDescriptor: (_, key) => {',
    '    const descriptor = Reflect.getOwnPropertyDescriptor(load(), key)',
    '    return descriptor && {...descriptor, configurable: true}',
    '  },',
    '})',
  ].join('\n')
}

const packageName = (specifier) =>
  specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]

const manifest = JSON.parse(readFileSync('oclif.manifest.json', 'utf8'))
const entryPoints = [
  'dist/commands/_base/direct.js',
  ...Object.values(manifest.commands).map((c) => c.relativePath.join('/')),
]
rmSync('dist/direct', {recursive: true, force: true})

// This build, named by everything tsc built and the package it belongs to: src/config/validated-cache.ts
// keys its entries with it, so a changed schema never reads what another build validated.
const buildHash = createHash('sha256').update(readFileSync('package.json'))
for (const file of readdirSync('dist', {recursive: true}).sort())
  if (/\.js$/.test(file)) buildHash.update(`${file}\0`).update(readFileSync(path.join('dist', file)))
const options = {
  outdir: 'dist/direct',
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  minifySyntax: true,
  minifyWhitespace: true,
  legalComments: 'none',
  define: {__RETAILOPS_BUILD__: JSON.stringify(buildHash.digest('hex').slice(0, 32))},
  logLevel: 'warning',
  // CommonJS libraries (oclif) call require() for Node's own modules; oclif's cache falls back to __dirname.
  banner: {
    js: [
      "import {createRequire as __createRequire} from 'node:module'",
      "import {fileURLToPath as __fileURLToPath} from 'node:url'",
      'const require = __createRequire(import.meta.url)',
      'const __filename = __fileURLToPath(import.meta.url)',
      "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'))",
    ].join(';'),
  },
  plugins: [
    {
      name: 'inline-only-startup-libraries',
      setup(b) {
        // commands/_base/direct.ts sets what Config.load would leave in oclif's process-wide cache.
        b.onResolve({filter: /^@oclif\/core\/lib\/cache$/}, () => ({
          path: realpathSync('node_modules/@oclif/core/lib/cache.js'),
        }))
        b.onResolve({filter: /./}, (args) => {
          if (!args.importer.startsWith(`${oclifRoot}${path.sep}`)) return undefined
          const importer = path.relative(oclifRoot, args.importer).split(path.sep).join('/')
          const deferred = DEFERRED.findIndex((d) => d.importer === importer && d.specifier === args.path)
          if (deferred < 0) return undefined
          deferredFound.add(deferred)
          return {path: String(deferred), namespace: 'deferred-oclif'}
        })
        b.onLoad({filter: /.*/, namespace: 'deferred-oclif'}, (args) => ({
          contents: deferredModule(DEFERRED[Number(args.path)]),
          loader: 'js',
          resolveDir: oclifRoot,
        }))
        // zod's namespace re-exports all of its 50 message locales (about 300 KB of the bundle's
        // 585 KB of zod, compiled on every first run after an install and every validation of an
        // edited retailops.yaml): the bundle keeps English, the one retailops uses (zod's default).
        b.onResolve({filter: /^\.\.\/locales\/index\.js$/}, (args) =>
          args.importer.startsWith(`${zodRoot}${path.sep}`) ? {path: 'locales', namespace: 'zod-english'} : undefined,
        )
        b.onLoad({filter: /.*/, namespace: 'zod-english'}, () => ({
          contents: `export {default as en} from ${JSON.stringify(path.join(zodRoot, 'v4/locales/en.js'))}`,
          loader: 'js',
          resolveDir: zodRoot,
        }))
        b.onResolve({filter: /^[^./]/}, (args) => {
          if (args.path.startsWith('node:')) return {path: args.path, external: true}
          const name = packageName(args.path)
          if (NEVER.has(name)) return {path: args.path, external: true}
          const fromLibrary = args.importer.includes(`${path.sep}node_modules${path.sep}`)
          if (fromLibrary || INLINE.has(name)) return undefined
          return {path: args.path, external: true}
        })
      },
    },
  ],
}
await build({...options, entryPoints, outbase: 'dist', splitting: true})
/**
 * Libraries a SOLO command's file leaves out: each is bundled once into a CommonJS file of its own,
 * dist/direct/lib/NAME.cjs, which the command requires where it first needs it. zod runs only for a
 * retailops.yaml that the compiled validator refuses (to report it) and for overlays, yaml for
 * positions in such reports, render's templates and slo rules' rare strings: 460 KB of each file
 * of ~1 MB that a first run (no compile cache) would otherwise parse for nothing, 8-16 ms of CPU.
 */
const LAZY_LIBRARIES = ['zod', 'yaml']
await build({
  ...options,
  entryPoints: LAZY_LIBRARIES.map((name) => ({in: `lib:${name}`, out: `lib/${name}`})),
  outExtension: {'.js': '.cjs'},
  format: 'cjs',
  splitting: false,
  banner: {},
  plugins: [
    {
      name: 'lazy-library-entries',
      setup(b) {
        b.onResolve({filter: /^lib:/}, (args) => ({path: args.path.slice('lib:'.length), namespace: 'lib'}))
        b.onLoad({filter: /.*/, namespace: 'lib'}, (args) => ({
          contents: `export * from ${JSON.stringify(args.path)}`,
          loader: 'js',
          resolveDir: path.resolve('.'),
        }))
      },
    },
    ...options.plugins,
  ],
})
// Each SOLO command: one module exporting the runner's runDirect and the command class as its default.
const soloRoot = path.resolve('dist')
await build({
  ...options,
  entryPoints: SOLO.map((id) => {
    const command = manifest.commands[id].relativePath.slice(1).join('/')
    return {in: `solo:${command}`, out: `solo/${command.replace(/\.js$/, '')}`}
  }),
  splitting: false,
  plugins: [
    {
      name: 'solo-entries',
      setup(b) {
        b.onResolve({filter: /^solo:/}, (args) => ({path: args.path.slice('solo:'.length), namespace: 'solo'}))
        b.onLoad({filter: /.*/, namespace: 'solo'}, (args) => ({
          contents: [
            `export {runDirect} from ${JSON.stringify(path.join(soloRoot, 'commands/_base/direct.js'))}`,
            `export {default} from ${JSON.stringify(path.join(soloRoot, args.path))}`,
          ].join('\n'),
          loader: 'js',
          resolveDir: soloRoot,
        }))
        // A lazy library: a CommonJS module inside the bundle that requires the library's own file
        // when first required, so the file is neither compiled nor run on the paths that never need it.
        b.onResolve({filter: new RegExp(`^(${LAZY_LIBRARIES.join('|')})$`)}, (args) => ({
          path: args.path,
          namespace: 'lazy-library',
        }))
        b.onLoad({filter: /.*/, namespace: 'lazy-library'}, (args) => ({
          // The command's file is dist/direct/solo/commands/…; the library's dist/direct/lib/NAME.cjs.
          // (__dirname and require are the banner's: the command file's folder, and a require from it.)
          contents: `module.exports = require(__dirname.replace(/([\\\\/])solo[\\\\/]commands(?:[\\\\/].*)?$/, '$1lib$1') + ${JSON.stringify(`${args.path}.cjs`)})`,
          loader: 'js',
        }))
      },
    },
    ...options.plugins,
  ],
})
// A newer oclif that moved one of these modules would quietly bundle it again: stop the build instead.
const stale = DEFERRED.filter((_, i) => !deferredFound.has(i))
if (stale.length > 0) {
  console.error(
    `scripts/bundle-direct.mjs: @oclif/core no longer requires ${stale.map((d) => `${d.specifier} from ${d.importer}`).join(', ')}: update DEFERRED`,
  )
  process.exit(1)
}
