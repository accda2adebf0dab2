import {readFile} from 'node:fs/promises'

import {stringify} from 'yaml'

import {packagePath} from './paths.js'

/** `{{name}}` placeholders; an unknown placeholder is a bug in the template, not silently empty. */
export function renderTemplate(text: string, values: Record<string, string | number | boolean>): string {
  return text.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    if (!(key in values)) throw new Error(`template placeholder {{${key}}} has no value`)
    return String(values[key])
  })
}

/**
 * A value as a YAML double-quoted scalar, for substituting user input into a YAML template:
 * `: `, `#`, quotes, newlines and control characters stay part of the value instead of turning
 * into new keys or comments.
 */
export function yamlString(value: string): string {
  return stringify(value, {defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN', lineWidth: 0}).trimEnd()
}

export async function readTemplate(relative: string): Promise<string> {
  return readFile(packagePath('templates', relative), 'utf8')
}
