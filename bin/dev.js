#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// Development entry: oclif registers tsx for the TypeScript sources; the committed manifest is
// ignored, so that a command added since the last build is found.
import {execute} from '@oclif/core'

const root = new URL('..', import.meta.url).pathname
await execute({development: true, dir: import.meta.url, loadOptions: {root, ignoreManifest: true}})
