import {readPlainYaml} from './plain-yaml.js'
import type {RetailOpsConfig} from './schema.js'
import {validateConfig} from './validate-config.generated.js'

/**
 * retailops.yaml parsed and validated without zod and without positions (issue 18: a tenth of the
 * full path's cost), when it is plain YAML the schema accepts; undefined sends it the full way
 * (./parse.ts), which reports every problem with its line. Both ways give the same configuration.
 */
export function parseValidConfig(text: string): RetailOpsConfig | undefined {
  const data = readPlainYaml(text)
  return data && validateConfig(data)
}
