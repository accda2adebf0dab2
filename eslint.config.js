// ESLint (flat config): `npm run lint` (with the type check) and .ci/run.
// Formatting is Prettier's (.prettierrc, `npm run format`), not ESLint's.
import {existsSync} from 'node:fs'

import js from '@eslint/js'
import globals from 'globals'
import tseslint from 'typescript-eslint'

import layers from './scripts/eslint/layers.mjs'

// docs/architecture.md, Layers. Infrastructure: one client per external system (kubernetes,
// prometheus, docker: the Docker Engine and OCI registries, signing: cosign-compatible
// signatures kept in those registries, runner: the image every in-cluster job runs, supplychain:
// see below) and the vocabulary every concept shares (config, errors, ui, report, assets: the package's own
// templates and files). Every other folder under src/ is a concept.
const INFRASTRUCTURE = [
  'config',
  'errors',
  'ui',
  'report',
  'assets',
  'kubernetes',
  'prometheus',
  'docker',
  'signing',
  'runner',
  // What is known about an image beyond its signature: SBOMs, provenance, attestations, vulnerability
  // matching and the supply-chain policy; deploy, promote, scan and build use it.
  'supplychain',
  // The one client for S3-compatible object stores and local backup directories (BackupLocation):
  // DR drills read backups through it, `retailops backup` writes them.
  'objectstore',
]
// The concept-to-concept dependencies: a release is a deploy with a rollout on top, and a preview
// environment is a deploy into a namespace of its own.
const CONCEPT_IMPORTS = {rollout: ['deploy'], env: ['deploy']}
// Concept-to-concept imports allowed as [importing file, imported file]. Empty since the shared
// helpers moved down to infrastructure (issue 14, item 2); keep it so: a new crossing fails CI,
// and a pair listed here whose import is gone fails too.
const LAYER_EXCEPTIONS = []
for (const pair of LAYER_EXCEPTIONS) {
  for (const file of pair) {
    if (!existsSync(new URL(file, import.meta.url)))
      throw new Error(`eslint.config.js: layer exception ${pair.join(' -> ')}: ${file} does not exist; delete the pair`)
  }
}

export default tseslint.config(
  {ignores: ['dist/', 'coverage/', 'bench/results/', 'templates/', '**/node_modules/', '.retailops/']},
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: {...globals.node},
      parserOptions: {
        // The CommonJS preload a test passes to a CLI process (--require) is outside tsconfig's ESM sources.
        projectService: {allowDefaultProject: ['test/support/*.cjs']},
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: {reportUnusedDisableDirectives: 'error'},
    rules: {
      // `const {resourceVersion: _rv, ...rest} = object` drops a field on purpose.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true},
      ],
      // An async method that does not await still turns a throw into a rejection, which callers
      // of a Promise-returning interface (providers, checks, test doubles) rely on.
      '@typescript-eslint/require-await': 'off',
      // String(value) is how this code renders values of unknown shape on purpose (CSV and HTML
      // cells, evidence, flag values); restrict-template-expressions still stops an object
      // dropped into a template literal.
      '@typescript-eslint/no-base-to-string': 'off',
    },
  },
  {
    // Tests build loose fixtures and read JSON the CLI printed: `any` enters there and the no-unsafe-*
    // family would follow it everywhere. src/ and commands/ have no `any` (the Kubernetes objects are
    // typed, src/kubernetes/kinds.ts), so there every rule of recommendedTypeChecked applies.
    files: ['test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // Outside the TypeScript project (tsconfig.json): scripts, entry points, the bundled
    // services (run by Node's type stripping) and this file.
    files: ['**/*.js', '**/*.mjs', 'services/**'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    files: ['src/**'],
    plugins: {retailops: {rules: {layers}}},
    rules: {
      'retailops/layers': [
        'error',
        {infrastructure: INFRASTRUCTURE, conceptImports: CONCEPT_IMPORTS, exceptions: LAYER_EXCEPTIONS},
      ],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@oclif/*', 'oclif'],
              message: 'src/ never imports oclif: commands/ parse and render, src/ returns results.',
            },
          ],
        },
      ],
      'no-console': 'error',
    },
  },
  {
    // src/ui is the output layer (Output, the terminal renderer): the one place that writes.
    files: ['src/**'],
    ignores: ['src/ui/**'],
    rules: {
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'stdout',
          message: 'src/ never prints: report through ctx.out (src/ui/output.ts).',
        },
        {
          object: 'process',
          property: 'stderr',
          message: 'src/ never prints: report through ctx.out (src/ui/output.ts).',
        },
      ],
    },
  },
  {
    // CommonJS by design (a --require preload): require() is how it loads.
    files: ['**/*.cjs'],
    languageOptions: {sourceType: 'commonjs'},
    rules: {'@typescript-eslint/no-require-imports': 'off'},
  },
)
