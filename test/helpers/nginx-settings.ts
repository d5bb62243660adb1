// The balancer settings the render tests start from (balancer/render.ts NginxSettings); a test overrides what it checks.
import type { NginxSettings } from '../../balancer/render';

export const RENDER_SETTINGS: NginxSettings = {
  listenAddress: '127.0.0.1',
  listenPort: 8080,
  adminAddress: '127.0.0.1',
  adminPort: 8081,
  reusePort: false,
  connLimitPerClient: 100,
  rateLimitPerClient: 1000,
  rateBurstPerClient: 2000,
  streamPaths: [{ path: '/api/activity/stream', exact: false }],
  streamLimitPerClient: 16,
  workDir: '/tmp/work',
  statusPort: 4001,
  accessLog: { relayPort: 4002 },
  workerProcesses: 1,
};
