import {readFile} from 'node:fs/promises'
import {createRequire} from 'node:module'
import path from 'node:path'

import Ajv from 'ajv-draft-04'
import addFormats from 'ajv-formats'

// The SARIF 2.1.0 JSON schema (OASIS final, rtm.5, as schemastore serves it), as Microsoft's
// @microsoft/jest-sarif package ships it.
const require = createRequire(import.meta.url)
const SCHEMA = path.join(
  path.dirname(require.resolve('@microsoft/jest-sarif/package.json')),
  'lib/schemas/sarif-2.1.0-rtm.5.json',
)

/** A validator for SARIF 2.1.0 logs; its `errors` say what is wrong. */
export async function sarifValidator() {
  // unicodeRegExp off: the schema's language pattern has a stray "]" only non-unicode regular expressions accept.
  const ajv = new Ajv.default({allErrors: true, strict: false, unicodeRegExp: false})
  addFormats.default(ajv)
  return ajv.compile(JSON.parse(await readFile(SCHEMA, 'utf8')))
}
