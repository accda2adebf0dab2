import {readFile} from 'node:fs/promises'

import {packagePath} from './paths.js'

/** `{{name}}` placeholders; an unknown placeholder is a bug in the template, not silently empty. */
export function renderTemplate(text: string, values: Record<string, string | number | boolean>): string {
  return text.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    if (!(key in values)) throw new Error(`template placeholder {{${key}}} has no value`)
    return String(values[key])
  })
}

export async function readTemplate(relative: string): Promise<string> {
  return readFile(packagePath('templates', relative), 'utf8')
}
