import test from 'ava';
import { renderNginxConfig, type NginxSettings } from '../../balancer/render';
import { parseAdminTls, parsePublicTls, parseUpstreamCa } from '../../balancer/tls-config';
import { makeTestCertificates, type TestCertificates } from '../../harness/tls';
import { RENDER_SETTINGS } from '../helpers/nginx-settings';

const settings: NginxSettings = { ...RENDER_SETTINGS, listenPort: 8443, reusePort: true };
const table = { services: [] };
const files = { certFile: '/run/secrets/cert.pem', keyFile: '/run/secrets/key.pem' };

let certs: TestCertificates;
test.before(async () => (certs = await makeTestCertificates()));
test.after.always(() => certs?.remove());
const ports = { listenPort: 8443, adminPort: 8081 };
const pair = () => ({ TLS_CERT_FILE: certs.certFile, TLS_KEY_FILE: certs.keyFile });

test('without TLS the public listener is plain HTTP and nothing of TLS is rendered', (t) => {
  const text = renderNginxConfig(settings, table);
  t.notRegex(text, /ssl|return 308|497/);
  t.regex(text, /listen 127\.0\.0\.1:8443 reuseport;/);
});

test('with TLS the public listener speaks HTTPS with the files, TLS 1.2 and 1.3 only, and no plain listener when off', (t) => {
  const text = renderNginxConfig({ ...settings, tls: { ...files, publicHttpsPort: 8443 } }, table);
  t.regex(
    text,
    /listen 127\.0\.0\.1:8443 ssl reuseport;\n {4}ssl_certificate \/run\/secrets\/cert\.pem;\n {4}ssl_certificate_key \/run\/secrets\/key\.pem;/,
  );
  t.regex(text, /\n {2}ssl_protocols TLSv1\.2 TLSv1\.3;\n/);
  t.regex(text, /ssl_session_cache shared:tls_sessions:10m;[\s\S]*ssl_session_tickets off;/);
  t.regex(text, /error_page 497 = @plain_http;/);
  t.notRegex(text, /return 308/);
  // Only the public and admin TCP listeners (and the admin's Unix socket).
  t.deepEqual(text.match(/listen [^;]+;/g), [
    'listen 127.0.0.1:8443 ssl reuseport;',
    'listen 127.0.0.1:8081 reuseport;',
    'listen unix:/tmp/work/admin.sock;',
  ]);
  // The evidence page's one GET goes to the public listener over HTTPS.
  t.regex(text, /proxy_pass https:\/\/127\.0\.0\.1:8443\/;/);
});

test('PUBLIC_HTTP=redirect renders a plain listener answering 308 to the HTTPS port clients reach, the port left out for 443', (t) => {
  const redirect = renderNginxConfig({ ...settings, tls: { ...files, redirectPort: 8080, publicHttpsPort: 9443 } }, table);
  t.regex(redirect, /server \{\n {4}listen 127\.0\.0\.1:8080 reuseport;\n {4}return 308 https:\/\/\$host:9443\$request_uri;\n {2}\}/);
  const standard = renderNginxConfig({ ...settings, tls: { ...files, redirectPort: 8080, publicHttpsPort: 443 } }, table);
  t.regex(standard, /return 308 https:\/\/\$host\$request_uri;/);
});

test('parsePublicTls: off when neither file is given; the other variables then refused', (t) => {
  t.is(parsePublicTls({}, ports), undefined);
  t.throws(() => parsePublicTls({ PUBLIC_HTTP: 'redirect' }, ports), {
    message: /^PUBLIC_HTTP = "redirect" is not allowed: use it only with TLS_CERT_FILE/,
  });
});

test('parsePublicTls: a matching pair, off by default, redirect with its port, the public HTTPS port', (t) => {
  t.deepEqual(parsePublicTls(pair(), ports), {
    ...{ certFile: certs.certFile, keyFile: certs.keyFile },
    publicHttp: 'off',
    redirectPort: undefined,
    publicHttpsPort: 8443,
  });
  const redirect = parsePublicTls({ ...pair(), PUBLIC_HTTP: 'redirect', HTTP_REDIRECT_PORT: '8080', PUBLIC_HTTPS_PORT: '443' }, ports);
  t.like(redirect, { publicHttp: 'redirect', redirectPort: 8080, publicHttpsPort: 443 });
});

test('parsePublicTls: every bad value is named with what is allowed', (t) => {
  const bad: Array<[NodeJS.ProcessEnv, RegExp]> = [
    [{ TLS_CERT_FILE: certs.certFile }, /^TLS_KEY_FILE = "" is not allowed/],
    [{ TLS_KEY_FILE: certs.keyFile }, /^TLS_CERT_FILE = "" is not allowed/],
    [{ ...pair(), TLS_CERT_FILE: 'cert.pem' }, /^TLS_CERT_FILE = "cert\.pem" is not allowed: use an absolute path/],
    [{ ...pair(), TLS_CERT_FILE: '/etc/cert$x.pem' }, /^TLS_CERT_FILE = "\/etc\/cert\$x\.pem" is not allowed/],
    [
      { ...pair(), TLS_KEY_FILE: '/nonexistent/key.pem' },
      /^TLS_KEY_FILE = "\/nonexistent\/key\.pem" is not allowed: use a PEM file .* can read \(ENOENT\)/,
    ],
    [{ ...pair(), TLS_KEY_FILE: certs.caFile }, /^TLS_KEY_FILE = ".*ca\.pem" is not allowed: use an unencrypted PEM private key/],
    [
      { ...pair(), TLS_KEY_FILE: `${certs.dir}/ca.key` },
      /^TLS_KEY_FILE = ".*ca\.key" is not allowed: use the private key of the certificate/,
    ],
    [{ ...pair(), PUBLIC_HTTP: 'on' }, /^PUBLIC_HTTP = "on" is not allowed: use redirect or off/],
    [{ ...pair(), PUBLIC_HTTP: 'redirect' }, /^HTTP_REDIRECT_PORT = "" is not allowed/],
    [
      { ...pair(), PUBLIC_HTTP: 'redirect', HTTP_REDIRECT_PORT: '8443' },
      /^HTTP_REDIRECT_PORT = "8443" is not allowed: use a port other than LISTEN_PORT/,
    ],
    [{ ...pair(), HTTP_REDIRECT_PORT: '8080' }, /^HTTP_REDIRECT_PORT = "8080" is not allowed: use it only with PUBLIC_HTTP=redirect/],
    [{ ...pair(), PUBLIC_HTTPS_PORT: '0' }, /^PUBLIC_HTTPS_PORT = "0" is not allowed/],
  ];
  for (const [env, message] of bad) t.throws(() => parsePublicTls(env, ports), { message }, JSON.stringify(env));
  t.throws(() => parsePublicTls(pair(), ports, new Date(Date.now() + 3 * 86_400_000)), {
    message: /^TLS_CERT_FILE = .* a certificate still valid \(this one expired/,
  });
  t.throws(() => parsePublicTls(pair(), ports, new Date(Date.now() - 3 * 86_400_000)), {
    message: /^TLS_CERT_FILE = .* a certificate valid now \(this one is valid from/,
  });
});

test('UPSTREAM_CA_FILE: every service proxied over HTTPS, verified with the CA for <service>.service.consul, on both listeners', (t) => {
  const services = {
    services: [
      { name: 'hello', routes: [{ path: '/', exact: true }], upstreams: ['10.0.0.2:21001'] },
      { name: 'activity', routes: [{ path: '/api/activity', exact: false }], upstreams: ['10.0.0.3:22001'] },
    ],
  };
  const plain = renderNginxConfig(settings, services);
  t.notRegex(plain, /proxy_ssl|proxy_pass https/);
  const text = renderNginxConfig({ ...settings, upstreamCaFile: '/run/secrets/upstream-ca.pem' }, services);
  for (const service of ['hello', 'activity']) {
    // One location on the public listener and one on the admin listener per route, each verifying.
    t.is(text.split(`proxy_pass https://svc_${service};`).length - 1, service === 'hello' ? 2 : 4, service);
    t.is(text.split(`proxy_ssl_name ${service}.service.consul;`).length - 1, service === 'hello' ? 2 : 4, service);
  }
  t.notRegex(text, /proxy_pass http:\/\/svc_/);
  t.is(text.split('proxy_ssl_verify on;').length - 1, 6);
  t.regex(text, /proxy_ssl_trusted_certificate \/run\/secrets\/upstream-ca\.pem;/);
});

test('parseUpstreamCa: unset is plain HTTP; a CA certificate file is taken; a leaf, a missing file or an unsafe path is refused', (t) => {
  t.is(parseUpstreamCa({}), undefined);
  t.is(parseUpstreamCa({ UPSTREAM_CA_FILE: certs.caFile }), certs.caFile);
  t.regex(
    t.throws(() => parseUpstreamCa({ UPSTREAM_CA_FILE: certs.certFile })).message,
    /UPSTREAM_CA_FILE = ".*" is not allowed: use a PEM file whose first certificate is a CA certificate/,
  );
  t.regex(
    t.throws(() => parseUpstreamCa({ UPSTREAM_CA_FILE: '/nonexistent/ca.pem' })).message,
    /UPSTREAM_CA_FILE = "\/nonexistent\/ca.pem" is not allowed: use a PEM file this process .* can read \(ENOENT\)/,
  );
  t.regex(
    t.throws(() => parseUpstreamCa({ UPSTREAM_CA_FILE: 'relative.pem' })).message,
    /UPSTREAM_CA_FILE = "relative.pem" is not allowed: use an absolute path/,
  );
});

test('ADMIN_TLS_CERT_FILE and ADMIN_TLS_KEY_FILE: the admin listener speaks HTTPS (behind the login front too), plain HTTP there a JSON 400', (t) => {
  const admin = parseAdminTls({ ADMIN_TLS_CERT_FILE: certs.certFile, ADMIN_TLS_KEY_FILE: certs.keyFile })!;
  t.deepEqual(admin, { certFile: certs.certFile, keyFile: certs.keyFile });
  t.is(parseAdminTls({}), undefined);
  t.regex(t.throws(() => parseAdminTls({ ADMIN_TLS_CERT_FILE: certs.certFile })).message, /ADMIN_TLS_KEY_FILE = "" is not allowed/);
  for (const adminLogin of [false, true]) {
    const text = renderNginxConfig({ ...settings, adminTls: files, adminLogin }, table);
    t.regex(text, /listen 127\.0\.0\.1:8081 ssl reuseport;\n {4}ssl_certificate \/run\/secrets\/cert\.pem;/, `adminLogin ${adminLogin}`);
    t.regex(text, /ssl_protocols TLSv1\.2 TLSv1\.3;/);
  }
  t.notRegex(renderNginxConfig(settings, table), /8081 ssl/);
});
