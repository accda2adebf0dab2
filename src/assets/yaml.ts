/**
 * The yaml library loaded on first use, for code that only some paths of a command need (a drill's
 * snapshot file, a definition read by a recoverability check). The direct start's bundle inlines
 * yaml, a CommonJS package, and a dynamic import of it there answers a module whose only export is
 * `default`: the named exports are read from it when they are not on the namespace itself.
 */
type Yaml = typeof import('yaml')

export async function loadYaml(): Promise<Yaml> {
  const loaded = (await import('yaml')) as Yaml & {default?: Yaml}
  return typeof loaded.stringify === 'function' ? loaded : loaded.default!
}
