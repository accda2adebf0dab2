import {fileURLToPath} from 'node:url'

/** The repository root (the folder with package.json). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
