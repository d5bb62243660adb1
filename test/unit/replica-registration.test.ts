import test from 'ava';
import { waitFor } from '../../harness/processes';
import { createLogger } from '../../lib/logger';
import { keepRegistered, type AgentApi, type InitialStatus, type ServiceDefinition } from '../../replica/registration';

const service: ServiceDefinition = {
  id: 'hello-1',
  name: 'hello',
  address: '127.0.0.1',
  port: 8080,
  checkUrl: 'http://127.0.0.1:8080/health',
  tags: ['urlprefix-=/', 'urlprefix-/api/users'],
};
const fast = { pollMs: 20, firstRetryMs: 5, maxRetryMs: 40 };

/** An agent that can be "down" (every call fails) and that forgets its services when restarted. */
class FakeAgent implements AgentApi {
  up = true;
  services = new Set<string>();
  calls: string[] = [];
  times: number[] = [];
  private gate(call: string) {
    this.calls.push(call);
    this.times.push(performance.now());
    if (!this.up) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8500'), { code: 'ECONNREFUSED' });
  }
  statuses: InitialStatus[] = [];
  async register(s: ServiceDefinition, initialStatus: InitialStatus) {
    this.gate('register');
    this.services.add(s.id);
    this.statuses.push(initialStatus);
  }
  async deregister(id: string) {
    this.gate('deregister');
    this.services.delete(id);
  }
  async isRegistered(id: string) {
    this.gate('isRegistered');
    return this.services.has(id);
  }
}

function quietLogger() {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, logger: createLogger({ instance: 'hello-1' }, (line) => lines.push(JSON.parse(line) as Record<string, unknown>)) };
}

test('retries with capped backoff until the agent answers, then registers once', async (t) => {
  const agent = new FakeAgent();
  agent.up = false;
  const { logger, lines } = quietLogger();
  const registration = keepRegistered(agent, service, logger, fast);
  t.teardown(() => registration.stop());
  await waitFor('eight failed attempts', () => agent.calls.length >= 8, 5000, 5);
  t.false(registration.isRegistered());
  const gaps = agent.times.slice(1, 8).map((time, i) => time - agent.times[i]);
  // Waits 5, 10, 20, 40 (the cap), 40, ... ms: timers never fire early, so the sum is a floor.
  t.true(gaps.reduce((a, b) => a + b, 0) >= 5 + 10 + 20 + 40 * 4 - 2, `gaps ${gaps.map(Math.round).join(',')}`);
  // Capped: the last four waits are 4 x 40 ms (doubling they would be 600 ms); twice that allows for a slow machine.
  const lastFour = gaps.slice(-4).reduce((a, b) => a + b, 0);
  t.true(lastFour < 2 * 4 * fast.maxRetryMs, `capped: gaps ${gaps.map(Math.round).join(',')}`);
  agent.up = true;
  await waitFor('registration', () => registration.isRegistered(), 2000, 5);
  t.deepEqual([...agent.services], ['hello-1']);
  // The same error is logged once, not once per retry.
  t.is(lines.filter((l) => l.msg === 'cannot register with Consul; retrying').length, 1);
  t.truthy(lines.find((l) => l.msg === 'registered'));
});

test("a fresh replica registers passing; one that finds its crashed predecessor's entry replaces it and starts critical", async (t) => {
  const fresh = new FakeAgent();
  const first = keepRegistered(fresh, service, quietLogger().logger, fast);
  t.teardown(() => first.stop());
  await waitFor('registration', () => first.isRegistered(), 2000, 5);
  t.deepEqual(fresh.calls.slice(0, 2), ['isRegistered', 'register']);
  t.deepEqual(fresh.statuses, ['passing']);

  const restarted = new FakeAgent();
  restarted.services.add('hello-1'); // left by a process killed without deregistering
  const { logger, lines } = quietLogger();
  const second = keepRegistered(restarted, service, logger, fast);
  t.teardown(() => second.stop());
  await waitFor('registration', () => second.isRegistered(), 2000, 5);
  t.deepEqual(restarted.calls.slice(0, 3), ['isRegistered', 'deregister', 'register']);
  t.deepEqual(restarted.statuses, ['critical']);
  t.truthy(lines.find((l) => String(l.msg).startsWith('replaced the entry a previous run left')));

  // Later re-registrations (agent restarted) start passing again.
  restarted.services.clear();
  await waitFor('re-registration', () => restarted.statuses.length === 2, 2000, 5);
  t.deepEqual(restarted.statuses, ['critical', 'passing']);
});

test('registers again when the agent forgets the service', async (t) => {
  const agent = new FakeAgent();
  const { logger, lines } = quietLogger();
  const registration = keepRegistered(agent, service, logger, fast);
  t.teardown(() => registration.stop());
  await waitFor('registration', () => agent.services.has('hello-1'), 2000, 5);
  agent.up = false;
  agent.services.clear(); // agent restarted: down for a moment, then empty
  await waitFor('a failed poll', () => lines.some((l) => l.msg === 'cannot reach Consul to check registration; retrying'), 2000, 5);
  agent.up = true;
  await waitFor('re-registration', () => agent.services.has('hello-1'), 2000, 5);
  t.truthy(lines.find((l) => l.msg === 'registration lost (Consul agent restarted?); registering again'));
  t.is(agent.calls.filter((c) => c === 'register').length, 2);
});

test('stop deregisters, and nothing registers again afterwards', async (t) => {
  const agent = new FakeAgent();
  const { logger, lines } = quietLogger();
  const registration = keepRegistered(agent, service, logger, fast);
  await waitFor('registration', () => agent.services.has('hello-1'), 2000, 5);
  await registration.stop();
  t.is(agent.services.size, 0);
  t.truthy(lines.find((l) => l.msg === 'deregistered'));
  const callsAtStop = agent.calls.length;
  await new Promise((r) => setTimeout(r, 100));
  t.is(agent.calls.length, callsAtStop, 'no calls after stop');
});

test('stop while Consul is down still returns, logging that deregistration failed', async (t) => {
  const agent = new FakeAgent();
  const { logger, lines } = quietLogger();
  const registration = keepRegistered(agent, service, logger, fast);
  await waitFor('registration', () => agent.services.has('hello-1'), 2000, 5);
  agent.up = false;
  await registration.stop();
  t.truthy(lines.find((l) => l.level === 'error' && String(l.msg).startsWith('deregistration failed')));
  t.false(registration.isRegistered());
});

test('stop before Consul was ever reached makes no deregister call', async (t) => {
  const agent = new FakeAgent();
  agent.up = false;
  const { logger, lines } = quietLogger();
  const registration = keepRegistered(agent, service, logger, fast);
  await waitFor('a few failed attempts', () => agent.calls.length >= 3, 2000, 5);
  await registration.stop();
  t.false(agent.calls.includes('deregister'));
  t.false(lines.some((l) => l.level === 'error'));
});

test('a register call that timed out may have landed, so stop still deregisters', async (t) => {
  const agent = new FakeAgent();
  const register = agent.register.bind(agent);
  let attempts = 0;
  agent.register = async (s, status) => {
    attempts++;
    if (attempts > 1) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    await register(s, status); // landed on the agent ...
    throw new Error('request timed out (3000ms)'); // ... but the answer was lost
  };
  const registration = keepRegistered(agent, service, quietLogger().logger, fast);
  await waitFor('later refused attempts', () => attempts >= 3, 2000, 5);
  await registration.stop();
  t.true(agent.calls.includes('deregister'));
  t.is(agent.services.size, 0);
});
