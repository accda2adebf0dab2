import {type Command, CommandHelp, Help} from '@oclif/core'

import {EXIT_CODE_MEANINGS, ExitCode, type ExitCodeName} from '../../src/errors/exit-codes.js'

/** The exit codes a command declares (`static exitCodes`), as `--help` and the README list them. */
export function exitCodeRows(names: readonly ExitCodeName[]): [string, string][] {
  return names.map((name) => [String(ExitCode[name]), `${name}: ${EXIT_CODE_MEANINGS[name]}`])
}

class RetailOpsCommandHelp extends CommandHelp {
  protected override sections(): ReturnType<CommandHelp['sections']> {
    const codes = (this.command as Command.Loadable & {exitCodes?: ExitCodeName[]}).exitCodes
    return [
      ...super.sections(),
      {
        header: 'EXIT CODES',
        generate: (_, header) => (codes?.length ? [{header, body: exitCodeRows(codes)}] : undefined),
      },
    ]
  }
}

/** oclif's help with an EXIT CODES section after the examples (package.json oclif.helpClass). */
export default class RetailOpsHelp extends Help {
  protected override CommandHelpClass = RetailOpsCommandHelp
}
