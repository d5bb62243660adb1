// The balancer container's health check (Dockerfile HEALTHCHECK, infra/balancer.ts): healthy once its own
// nginx answers /_balancer/status on the admin listener's Unix socket in WORK_DIR and Consul has answered
// the watcher, so a new balancer counts as ready only when it routes as the old one does. The socket, not
// the admin port: another balancer may share that port (REUSE_PORT) and would answer for this one.
import http from 'node:http';
import { adminSocketPath } from './nginx';

const workDir = process.env.WORK_DIR?.trim();
if (!workDir) {
  console.error('health-probe: WORK_DIR is not set; the probe finds the admin socket there');
  process.exit(1);
}

const req = http.get({ socketPath: adminSocketPath(workDir), path: '/_balancer/status', timeout: 2000 }, (res) => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => (body += chunk));
  res.on('end', () => {
    let consulIndex: number | null = null;
    try {
      if (res.statusCode === 200) consulIndex = (JSON.parse(body) as { consulIndex: number | null }).consulIndex;
    } catch {
      // Not the status JSON: unhealthy.
    }
    process.exit(consulIndex === null ? 1 : 0);
  });
});
req.on('timeout', () => req.destroy(new Error('no answer within 2 s')));
req.on('error', () => process.exit(1));
