import {runService} from '../../lib/run.ts'
import {SERVICE, createApp} from './app.ts'

await runService(SERVICE, () => createApp(process.env))
