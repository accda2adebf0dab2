import path from 'node:path'

import {RuleTester} from 'eslint'
import tseslint from 'typescript-eslint'
import {describe, it} from 'vitest'

// @ts-expect-error: a plain ESM rule module (scripts/ is outside the TypeScript project)
import layers from '../../../scripts/eslint/layers.mjs'

RuleTester.describe = describe
RuleTester.it = it
RuleTester.itOnly = it.only

const tester = new RuleTester({languageOptions: {parser: tseslint.parser, ecmaVersion: 2023, sourceType: 'module'}})
const file = (relative: string) => path.join(process.cwd(), relative)
const options = {infrastructure: ['config', 'errors', 'kubernetes', 'docker'], conceptImports: {rollout: ['deploy']}}

tester.run('retailops/layers', layers, {
  valid: [
    {
      name: 'a concept imports infrastructure',
      filename: file('src/capacity/warm.ts'),
      code: "import {x} from '../kubernetes/client.js'",
      options: [options],
    },
    {
      name: 'inside its own folder',
      filename: file('src/capacity/warm.ts'),
      code: "import {x} from './wait.js'",
      options: [options],
    },
    {
      name: 'rollout may import deploy',
      filename: file('src/rollout/engine.ts'),
      code: "import {x} from '../deploy/engine.js'",
      options: [options],
    },
    {
      name: 'infrastructure imports infrastructure',
      filename: file('src/kubernetes/apply.ts'),
      code: "import {x} from '../errors/index.js'",
      options: [options],
    },
    {
      name: 'packages are not layers',
      filename: file('src/capacity/warm.ts'),
      code: "import {x} from 'yaml'",
      options: [options],
    },
    {
      name: 'commands/ is not under the rule',
      filename: file('commands/deploy.ts'),
      code: "import {x} from '../src/rollout/release.js'",
      options: [options],
    },
    {
      name: 'a listed exception passes (.js import, .ts in the list)',
      filename: file('src/cost/cost.ts'),
      code: "import {price} from '../capacity/pricing.js'",
      options: [{...options, exceptions: [['src/cost/cost.ts', 'src/capacity/pricing.ts']]}],
    },
  ],
  invalid: [
    {
      name: 'concept to concept',
      filename: file('src/capacity/warm.ts'),
      code: "import {x} from '../scaffold/template.js'",
      options: [options],
      errors: [{messageId: 'conceptToConcept'}],
    },
    {
      name: 'deploy may not import rollout',
      filename: file('src/deploy/engine.ts'),
      code: "import {x} from '../rollout/engine.js'",
      options: [options],
      errors: [{messageId: 'conceptToConcept'}],
    },
    {
      name: 'a type-only import counts',
      filename: file('src/cost/cost.ts'),
      code: "import type {X} from '../capacity/pricing.js'",
      options: [options],
      errors: [{messageId: 'conceptToConcept'}],
    },
    {
      name: 'a dynamic import counts',
      filename: file('src/dr/drill.ts'),
      code: "await import('../deploy/images.js')",
      options: [options],
      errors: [{messageId: 'conceptToConcept'}],
    },
    {
      name: 're-exports count',
      filename: file('src/dr/index.ts'),
      code: "export {x} from '../slo/status.js'\nexport * from '../cost/cost.js'",
      options: [options],
      errors: [{messageId: 'conceptToConcept'}, {messageId: 'conceptToConcept'}],
    },
    {
      name: 'from a nested folder',
      filename: file('src/dr/providers/kubernetes.ts'),
      code: "import {x} from '../../capacity/wait.js'",
      options: [options],
      errors: [{messageId: 'conceptToConcept'}],
    },
    {
      name: 'infrastructure to a concept',
      filename: file('src/kubernetes/apply.ts'),
      code: "import {x} from '../deploy/labels.js'",
      options: [options],
      errors: [{messageId: 'infrastructureToConcept'}],
    },
    {
      name: 'src/ to commands/',
      filename: file('src/deploy/engine.ts'),
      code: "import {x} from '../../commands/deploy.js'",
      options: [options],
      errors: [{messageId: 'outsideSrc'}],
    },
    {
      name: 'an exception covers its pair only',
      filename: file('src/cost/cost.ts'),
      code: "import {price} from '../capacity/pricing.js'\nimport {q} from '../capacity/quantity.js'",
      options: [{...options, exceptions: [['src/cost/cost.ts', 'src/capacity/pricing.ts']]}],
      errors: [{messageId: 'conceptToConcept', line: 2}],
    },
    {
      name: 'a listed exception whose import is gone is stale',
      filename: file('src/cost/cost.ts'),
      code: "import {x} from '../kubernetes/client.js'",
      options: [{...options, exceptions: [['src/cost/cost.ts', 'src/capacity/pricing.ts']]}],
      errors: [{messageId: 'staleException', data: {from: 'src/cost/cost.ts', to: 'src/capacity/pricing.ts'}}],
    },
  ],
})
