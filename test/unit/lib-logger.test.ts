import test from 'ava';
import { createLogger } from '../../lib/logger';

function capture(identity: Record<string, unknown>) {
  const lines: string[] = [];
  return { lines, logger: createLogger(identity, (line) => lines.push(line)) };
}

test('one JSON object per line with time, level, the identity fields and msg', (t) => {
  const { lines, logger } = capture({ source: 'balancer' });
  logger.info('balancer started', { listen: '127.0.0.1:8080' });
  logger.warn('careful');
  logger.error('failed', { code: 1 });
  t.is(lines.length, 3);
  t.true(lines.every((line) => line.endsWith('\n') && !line.slice(0, -1).includes('\n')));
  const [info, warn, error] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  t.like(info, { level: 'info', source: 'balancer', msg: 'balancer started', listen: '127.0.0.1:8080' });
  t.like(warn, { level: 'warn', source: 'balancer', msg: 'careful' });
  t.like(error, { level: 'error', source: 'balancer', msg: 'failed', code: 1 });
  t.false(Number.isNaN(Date.parse(String(info.time))));
  t.deepEqual(Object.keys(info).slice(0, 4), ['time', 'level', 'source', 'msg']);
});

test('a replica puts its instance id on every line', (t) => {
  const { lines, logger } = capture({ instance: 'hello-1' });
  logger.info('listening');
  t.like(JSON.parse(lines[0]) as Record<string, unknown>, { instance: 'hello-1', msg: 'listening' });
});

test('an Error field is logged as its message, which JSON.stringify would lose', (t) => {
  const { lines, logger } = capture({ instance: 'hello-1' });
  logger.error('server error', { error: new Error('EADDRINUSE') });
  t.is((JSON.parse(lines[0]) as { error: unknown }).error, 'EADDRINUSE');
});
