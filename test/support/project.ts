// The one way tests build a retailops project: a fresh temp folder with retailops.yaml (YAML text,
// or an object the test keeps changing and writes again), any other files, overlays, the loaded
// configuration, and clean-up of whatever the test created for it in the sandbox. Each suite
// configures it (its config, its folder prefix, what its clean-up removes); none builds its own.
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {stringify} from 'yaml'

import {loadConfig, type LoadedConfig} from '../../src/config/load.js'
import {randomSuffix} from './names.js'

export type ProjectConfig = string | Record<string, unknown>

export interface ProjectOptions {
  /** The temp folder is `<prefix>-XXXXXX`, and `name` is `<prefix>-<id>`. */
  prefix?: string
  /** Other files, relative to the project folder. */
  files?: Record<string, string>
}

export class TempProject<C extends ProjectConfig = ProjectConfig> {
  readonly dir: string
  /** dir/retailops.yaml */
  readonly file: string
  /** Six random hex digits of this project only. */
  readonly id = randomSuffix()
  /** `<prefix>-<id>`: a project name or namespace no other run uses. */
  readonly name: string
  private readonly cleanups: (() => unknown)[] = []

  constructor(
    /** retailops.yaml as YAML text or as an object; writeConfig() writes it again after a test changed it. */
    public config: C,
    options: ProjectOptions = {},
  ) {
    const prefix = options.prefix ?? 't-project'
    this.name = `${prefix}-${this.id}`
    this.dir = mkdtempSync(path.join(os.tmpdir(), `${prefix}-`))
    this.file = path.join(this.dir, 'retailops.yaml')
    this.writeConfig()
    this.writeFiles(options.files ?? {})
  }

  /** Writes retailops.yaml (from `config` when given, which then becomes the project's config). */
  writeConfig(config: C = this.config): void {
    this.config = config
    writeFileSync(this.file, typeof config === 'string' ? config : stringify(config))
  }

  /** Writes files relative to dir, creating folders. */
  writeFiles(files: Record<string, string>): void {
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(this.dir, name)), {recursive: true})
      writeFileSync(path.join(this.dir, name), content)
    }
  }

  /** writeFiles, for callers that await. */
  async write(files: Record<string, string>): Promise<void> {
    this.writeFiles(files)
  }

  /** overlays/<service>.yaml with these patch entries; undefined deletes it. */
  overlay(service: string, entries: unknown[] | undefined): void {
    const file = path.join(this.dir, 'overlays', `${service}.yaml`)
    if (entries) this.writeFiles({[path.relative(this.dir, file)]: stringify(entries)})
    else rmSync(file, {force: true})
  }

  load(): Promise<LoadedConfig> {
    return loadConfig(this.file)
  }

  /** Runs at cleanup(), last added first: what a suite created in the sandbox for this project. */
  onCleanup(fn: () => unknown): void {
    this.cleanups.unshift(fn)
  }

  /** Runs the clean-ups (failures ignored: the namespace may be gone already), then deletes the folder. */
  async cleanup(): Promise<void> {
    for (const fn of this.cleanups) await Promise.resolve(fn()).catch(() => undefined)
    rmSync(this.dir, {recursive: true, force: true})
  }

  /** The folder only. */
  async remove(): Promise<void> {
    rmSync(this.dir, {recursive: true, force: true})
  }
}

/**
 * A project in a fresh temp folder (`<prefix>-XXXXXX`): retailops.yaml (text or object) plus any
 * other files. `new TempProject(config, {prefix, files})` is the same where a test needs it at once.
 */
export async function tempProject<C extends ProjectConfig>(
  config: C,
  files: Record<string, string> = {},
  prefix = 't-project',
): Promise<TempProject<C>> {
  return new TempProject(config, {prefix, files})
}
