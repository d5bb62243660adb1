// HTTPS at the edge with the real balancer (watcher + nginx), real Consul and two real replicas: a CA and a
// server certificate for 127.0.0.1 made by openssl here, the public port serving HTTPS whose chain verifies
// with that CA (and not without it), the plain-HTTP listener answering 308 to HTTPS, plain HTTP on the
// HTTPS port refused with a JSON 400, the evidence page's paths still reaching the public listener, bad
// files stopping the start with the variable named, and two TLS balancers handing over one port.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import test from 'ava';
import { startBalancer } from '../../harness/balancer';
import { freshBundle } from '../../harness/bundles';
import { startConsul } from '../../harness/consul';
import { sendRequests } from '../../harness/load';
import { freePorts } from '../../harness/ports';
import { waitFor } from '../../harness/processes';
import { startReplica } from '../../harness/service';
import { CA_FILE_VARIABLE, makeTestCertificates } from '../../harness/tls';

const EVIDENCE = path.resolve(__dirname, '../../scripts/evidence.ts');

/** A plain-HTTP GET; the status, headers and body. */
function plainGet(port: number, path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
  });
}

/** A TLS handshake with 127.0.0.1:port: whether the chain verified (and why not), protocol, cipher, issuer. */
function handshake(port: number, options: tls.ConnectionOptions) {
  return new Promise<{ authorized: boolean; error?: string; protocol: string | null; cipher: string; issuer: string }>(
    (resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options }, () => {
        const result = {
          authorized: socket.authorized,
          error: socket.authorizationError?.toString(),
          protocol: socket.getProtocol(),
          cipher: socket.getCipher().name,
          issuer: String(socket.getPeerCertificate().issuer.CN),
        };
        socket.end();
        resolve(result);
      });
      socket.setTimeout(5000, () => socket.destroy(new Error('no handshake within 5 s')));
      socket.on('error', reject);
    },
  );
}

test.serial(
  'the public port serves HTTPS with the given certificate, plain HTTP redirects, and the evidence paths still reach it',
  async (t) => {
    t.timeout(90_000);
    const certs = await makeTestCertificates();
    t.teardown(() => certs.remove());
    const consul = await startConsul();
    t.teardown(() => consul.stop());
    const replicas = await Promise.all(['hello-1', 'hello-2'].map((id) => startReplica(consul, 'hello', id)));
    t.teardown(() => Promise.all(replicas.map((r) => r.stop(5000))));

    const [redirectPort] = await freePorts(1);
    const balancer = await startBalancer(consul, {
      TLS_CERT_FILE: certs.certFile,
      TLS_KEY_FILE: certs.keyFile,
      PUBLIC_HTTP: 'redirect',
      HTTP_REDIRECT_PORT: String(redirectPort),
    });
    t.teardown(() => balancer.cleanup());
    t.regex(balancer.url, /^https:/);
    await balancer.waitForUpstreams('hello', 2);

    // Served over HTTPS, verified with the test's CA (harness/load.ts reads BALANCER_CA_FILE), by both replicas.
    process.env[CA_FILE_VARIABLE] = certs.caFile;
    t.teardown(() => delete process.env[CA_FILE_VARIABLE]);
    const report = await sendRequests(`${balancer.url}/`, 40);
    t.deepEqual(report.failures, []);
    t.deepEqual(Object.keys(report.byInstance).sort(), ['hello-1', 'hello-2']);

    // The chain verifies with the CA and not with Node's own roots; TLS 1.3 by default, 1.2 still offered.
    const trusted = await handshake(balancer.port, { ca: readFileSync(certs.caFile) });
    t.true(trusted.authorized, trusted.error);
    t.is(trusted.issuer, 'cnp test CA');
    t.is(trusted.protocol, 'TLSv1.3');
    const untrusted = await handshake(balancer.port, {});
    t.false(untrusted.authorized);
    t.regex(untrusted.error ?? '', /UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify/i);
    const tls12 = await handshake(balancer.port, { maxVersion: 'TLSv1.2' });
    t.is(tls12.protocol, 'TLSv1.2');
    t.regex(tls12.cipher, /^ECDHE-(ECDSA|RSA)-(AES\d+-GCM|CHACHA20)/);

    // Plain HTTP on the redirect port: a 308 to the same path and query on the HTTPS port, nothing proxied.
    const redirected = await plainGet(redirectPort, '/api/users?limit=1');
    t.is(redirected.status, 308);
    t.is(redirected.headers.location, `https://127.0.0.1:${balancer.port}/api/users?limit=1`);
    t.is(redirected.headers['x-instance-id'], undefined);

    // Plain HTTP on the HTTPS port: a JSON 400 saying so, never a proxied answer.
    const plain = await plainGet(balancer.port, '/');
    t.is(plain.status, 400);
    t.regex(plain.headers['content-type'] ?? '', /application\/json/);
    t.is((JSON.parse(plain.body) as { error: string }).error, 'plain HTTP sent to the HTTPS port');
    t.is(plain.headers['x-instance-id'], undefined);

    // The quick start's evidence command against the HTTPS URL: verified with --ca-file, refused without it.
    const evidence = (...args: string[]) =>
      new Promise<{ code: number; output: string }>((resolve) => {
        const argv = ['--import', 'tsx', EVIDENCE, '--url', balancer.url, '--admin-url', balancer.adminUrl, '--requests', '20', ...args];
        const env = { ...process.env, [CA_FILE_VARIABLE]: '' };
        execFile(process.execPath, argv, { env, timeout: 30_000 }, (error, stdout, stderr) =>
          resolve({ code: error ? Number((error as { code?: number }).code) : 0, output: stdout + stderr }),
        );
      });
    const verified = await evidence('--ca-file', certs.caFile);
    t.is(verified.code, 0, verified.output);
    t.regex(verified.output, /hello-1 +\d+[\s\S]*hello-2 +\d+[\s\S]*\(failed\) +0 /);
    t.regex(verified.output, /hello: routes =\/, \/api\/users; 2 upstream\(s\)/);
    const refused = await evidence();
    t.is(refused.code, 1);
    t.regex(refused.output, /\(failed\) +20 [\s\S]*(unable to verify the first certificate|UNABLE_TO_VERIFY)/);

    // The evidence page's paths go through the public listener, now over HTTPS.
    const tried = await fetch(`${balancer.adminUrl}/_balancer/try`, { signal: AbortSignal.timeout(5000) });
    t.is(tried.status, 200);
    t.regex(tried.headers.get('x-instance-id') ?? '', /^hello-[12]$/);
    // No activity service is routed: the relay reached the public listener over HTTPS and got its JSON 404.
    const activity = await fetch(`${balancer.adminUrl}/_balancer/activity`, { signal: AbortSignal.timeout(5000) });
    t.regex(await activity.text(), /event: unavailable\ndata: \{"status":404/);
  },
);

test.serial('bad certificate files stop the start with the variable and file named, the key never shown', async (t) => {
  t.timeout(30_000);
  const certs = await makeTestCertificates();
  t.teardown(() => certs.remove());
  const start = (env: NodeJS.ProcessEnv) =>
    new Promise<{ code: number | null; output: string }>((resolve) => {
      execFile(
        process.execPath,
        [freshBundle('balancer')],
        { env: { PATH: process.env.PATH, ...env }, timeout: 10_000 },
        (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, output: stdout + stderr }),
      );
    });
  // The key of another certificate: the CA's, so the pair does not match.
  const mismatched = await start({ TLS_CERT_FILE: certs.certFile, TLS_KEY_FILE: `${certs.dir}/ca.key` });
  t.is(mismatched.code, 2);
  t.notRegex(mismatched.output, /PRIVATE KEY|MI[A-Za-z0-9+/]{20}/);
  t.regex(mismatched.output, /TLS_KEY_FILE = \\?"[^"]*ca\.key\\?" is not allowed: use the private key of the certificate in/);
  // The key given as the certificate: named, and not a line of it printed.
  const swapped = await start({ TLS_CERT_FILE: certs.keyFile, TLS_KEY_FILE: certs.keyFile });
  t.is(swapped.code, 2);
  t.regex(swapped.output, /TLS_CERT_FILE = \\?"[^"]*server\.key\\?" is not allowed: use a PEM certificate/);
  t.notRegex(swapped.output, /PRIVATE KEY|MI[A-Za-z0-9+/]{20}/);
  const noPort = await start({ TLS_CERT_FILE: certs.certFile, TLS_KEY_FILE: certs.keyFile, PUBLIC_HTTP: 'redirect' });
  t.is(noPort.code, 2);
  t.regex(noPort.output, /HTTP_REDIRECT_PORT = \\?"\\?" is not allowed/);
});

test.serial('two HTTPS balancers with REUSE_PORT hand the port over: both serve, then the second alone', async (t) => {
  t.timeout(90_000);
  const certs = await makeTestCertificates();
  t.teardown(() => certs.remove());
  const consul = await startConsul();
  t.teardown(() => consul.stop());
  const replica = await startReplica(consul, 'hello', 'hello-1');
  t.teardown(() => replica.stop(5000));
  const tlsEnv = { TLS_CERT_FILE: certs.certFile, TLS_KEY_FILE: certs.keyFile, REUSE_PORT: 'true' };
  const old = await startBalancer(consul, tlsEnv);
  t.teardown(() => old.cleanup());
  await old.waitForUpstreams('hello', 1);
  // PUBLIC_HTTP is off by default: nginx listens on the HTTPS port, the admin port and its socket, nothing in clear.
  const loaded = readFileSync(path.join(old.workDir, 'nginx.conf'), 'utf8');
  t.deepEqual(loaded.match(/listen [^;]+;/g), [
    `listen 127.0.0.1:${old.port} ssl reuseport;`,
    `listen 127.0.0.1:${old.adminPort} reuseport;`,
    `listen unix:${old.workDir}/admin.sock;`,
  ]);
  // The public port shared, each its own admin port (so each status is its own).
  const next = await startBalancer(consul, { ...tlsEnv, LISTEN_PORT: String(old.port) });
  t.teardown(() => next.cleanup());
  await waitFor('the second balancer to route hello', async () => (await next.upstreams('hello')).length === 1, 20_000, 50);

  process.env[CA_FILE_VARIABLE] = certs.caFile;
  t.teardown(() => delete process.env[CA_FILE_VARIABLE]);
  const both = await sendRequests(`${old.url}/`, 60);
  t.deepEqual(both.failures, [], 'both serve the port');
  t.is(await old.stop(10_000), 0, 'the first stops gracefully');
  const after = await sendRequests(`${old.url}/`, 60);
  t.deepEqual(after.failures, [], 'the second serves alone');
});

test.serial(
  'ADMIN_TLS_CERT_FILE: the admin listener speaks HTTPS behind its login, its session cookie Secure; plain HTTP there gets a JSON 400',
  async (t) => {
    t.timeout(90_000);
    const certs = await makeTestCertificates();
    t.teardown(() => certs.remove());
    const consul = await startConsul();
    t.teardown(() => consul.stop());
    const replica = await startReplica(consul, 'hello', 'hello-1');
    t.teardown(() => replica.stop(5000));
    process.env[CA_FILE_VARIABLE] = certs.caFile;
    t.teardown(() => delete process.env[CA_FILE_VARIABLE]);
    const balancer = await startBalancer(
      consul,
      { ADMIN_TLS_CERT_FILE: certs.certFile, ADMIN_TLS_KEY_FILE: certs.keyFile },
      { adminLogin: true },
    );
    t.teardown(() => balancer.cleanup());
    t.regex(balancer.adminUrl, /^https:/);
    // The harness reads the status over HTTPS, verified with the CA, with the Bearer token.
    await balancer.waitForUpstreams('hello', 1);
    const trusted = await handshake(balancer.adminPort, { ca: readFileSync(certs.caFile) });
    t.true(trusted.authorized, trusted.error);

    // The login form over HTTPS: the session cookie is Secure, HttpOnly and SameSite=Strict.
    const login = await new Promise<{ status: number; cookie: string }>((resolve, reject) => {
      const body = `token=${encodeURIComponent(balancer.adminToken!)}`;
      const req = https.request(
        `${balancer.adminUrl}/_balancer/login`,
        {
          method: 'POST',
          ca: readFileSync(certs.caFile),
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) },
        },
        (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, cookie: String(res.headers['set-cookie'] ?? '') });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    t.is(login.status, 303);
    t.regex(login.cookie, /HttpOnly; SameSite=Strict; Secure$/);

    const plain = await plainGet(balancer.adminPort, '/_balancer/status');
    t.is(plain.status, 400);
    t.is((JSON.parse(plain.body) as { error: string }).error, 'plain HTTP sent to the HTTPS port');
  },
);
