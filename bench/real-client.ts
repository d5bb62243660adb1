// The real client of `npm run attack`, in a process of its own: over HTTPS the attacker's side does
// thousands of client handshakes, which in a shared event loop would hold up the real client's own
// handshakes until nginx timed them out: a failure of the test's client, not of the edge. On `start` it
// sends requests from 127.0.0.3 from two loops, a new connection each, taking the URLs in turn, until
// `stop`; then it replies with every answer.
import { setTimeout as sleep } from 'node:timers/promises';
import { REAL_CLIENT_ADDRESS, requestFrom, type Answer } from '../harness/attack';

export type RealClientMessage = { kind: 'start'; urls: string[] } | { kind: 'stop' };

let running = false;
let answers: Answer[] = [];
let loops: Promise<void>[] = [];

process.on('message', (message: RealClientMessage) => {
  if (message.kind === 'start') {
    running = true;
    answers = [];
    loops = [0, 1].map(async (loop) => {
      for (let n = loop; running; n++) {
        answers.push(await requestFrom(message.urls[n % message.urls.length], REAL_CLIENT_ADDRESS, 5000));
        await sleep(25);
      }
    });
  } else {
    running = false;
    void Promise.all(loops).then(() => process.send!(answers));
  }
});
process.on('disconnect', () => process.exit(0));
