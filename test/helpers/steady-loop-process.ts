// The steady request loop in a process of its own (see startSteadyLoopProcess in load.ts): started by a
// message with its URL and options, stopped by a second message, it answers with the loop's report.
import { startSteadyLoop, type SteadyLoop } from './load';

let loop: SteadyLoop | undefined;
process.on('message', async (message: { url: string; options: Parameters<typeof startSteadyLoop>[1] } | 'stop') => {
  if (message !== 'stop') {
    loop = startSteadyLoop(message.url, message.options);
    return;
  }
  const report = await loop!.stop();
  process.send!(report, () => process.exit(0));
});
// The parent went away (a failed or killed test run): the loop is bounded anyway, but end now.
process.on('disconnect', () => process.exit(0));
