#!/usr/bin/env -S node --import tsx --disable-warning=ExperimentalWarning
// Development entry: runs the TypeScript sources through tsx and ignores the committed
// manifest, so that a command added since the last build is found.
import {execute} from '@oclif/core'

const root = new URL('..', import.meta.url).pathname
await execute({development: true, dir: import.meta.url, loadOptions: {root, ignoreManifest: true}})
