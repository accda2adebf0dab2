import * as Flags from '@oclif/core/flags'

import {renderNotifyTest, sendTestMessages, type NotifyTestResult} from '../../src/notify/test-message.js'
import {RetailOpsCommand} from '../_base/base-command.js'

export default class NotifyTest extends RetailOpsCommand<typeof NotifyTest> {
  static override summary = 'Send a test message to each notification destination and show whether it was delivered.'
  static override description = [
    "Each destination of retailops.yaml's notifications gets one message in its own format (Slack Block Kit, a Teams Adaptive Card,",
    'a signed CloudEvent) through the same delivery as release events: attempts, per-attempt timeout and deadline from notifications.delivery.',
    'Exit 28 when any destination did not accept it.',
  ].join(' ')
  static override exitCodes = ['OK', 'USAGE', 'CONFIG', 'NOT_FOUND', 'NOTIFICATION_FAILED'] as const
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --destination ops-slack --json',
  ]
  static override flags = {
    destination: Flags.string({
      char: 'd',
      description: 'Only this destination (a name under notifications.destinations).',
    }),
  }

  async run(): Promise<NotifyTestResult> {
    const project = await this.loadProject()
    const result = await sendTestMessages(
      project,
      {
        destination: this.flags.destination,
        origin: {
          project: project.config.project,
          environment: this.flags.environment ?? project.config.defaultEnvironment,
        },
      },
      this.ctx,
    )
    this.log(renderNotifyTest(result))
    if (result.failed > 0) this.setOutcome('NOTIFICATION_FAILED')
    return result
  }
}
