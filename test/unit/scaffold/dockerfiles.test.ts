import {readFile} from 'node:fs/promises'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {BUNDLED_NAMES, DEFAULT_SERVICE_PORT} from '../../../src/scaffold/defaults.js'
import {serviceImageFiles} from '../../../src/scaffold/service-add.js'

describe("the bundled services' image files", () => {
  it('are templates/service rendered for each bundled service (npm run build regenerates them)', async () => {
    for (const name of BUNDLED_NAMES) {
      for (const [file, text] of Object.entries(await serviceImageFiles(name, DEFAULT_SERVICE_PORT))) {
        const committed = await readFile(path.resolve('services', name, file), 'utf8')
        expect(
          committed,
          `services/${name}/${file} differs from templates/service/${file}.tmpl: run npm run build`,
        ).toBe(text)
      }
    }
  })

  it('differ only in the service name', async () => {
    for (const file of ['Dockerfile', 'Dockerfile.dockerignore']) {
      const texts = await Promise.all(
        BUNDLED_NAMES.map((name) => readFile(path.resolve('services', name, file), 'utf8')),
      )
      expect(new Set(texts.map((text, i) => text.replaceAll(BUNDLED_NAMES[i], 'NAME'))).size, file).toBe(1)
    }
    const dockerfile = await readFile(path.resolve('services/cart/Dockerfile'), 'utf8')
    expect(dockerfile).toContain('COPY cart/ ./cart/')
    expect(dockerfile).toContain('CMD ["node", "cart/src/main.ts"]')
    expect(dockerfile).toContain(`EXPOSE ${DEFAULT_SERVICE_PORT}`)
  })

  it('a non-default port reaches PORT and EXPOSE', async () => {
    const {Dockerfile: text} = await serviceImageFiles('recommendations', 9000)
    expect(text).toContain('PORT=9000')
    expect(text).toContain('EXPOSE 9000')
    expect(text).not.toContain('8080')
  })
})
