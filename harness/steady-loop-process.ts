// The steady request loop in a process of its own (see startSteadyLoopProcess in load.ts): started by a
// message with its URL and options, stopped by a second message, it answers with the loop's report.
import { startSteadyLoop, type SteadyLoop } from './load';

let loop: SteadyLoop | undefined;
type Message = { url: string; options: Parameters<typeof startSteadyLoop>[1] } | 'stop';

async function handle(message: Message): Promise<void> {
  if (message !== 'stop') {
    loop = startSteadyLoop(message.url, message.options);
    return;
  }
  const report = await loop!.stop();
  process.send!(report, () => process.exit(0));
}

// A failure here would otherwise be an unhandled rejection the parent never hears about; exit non-zero instead.
process.on('message', (message: Message) => {
  handle(message).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
});
// The parent went away (a failed or killed test run): the loop is bounded anyway, but end now.
process.on('disconnect', () => process.exit(0));
