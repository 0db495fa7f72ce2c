// Issue 10, "Transport security" and "Headers and pages", without a browser:
// the headers on every kind of answer, JSON errors, no source maps, refused
// ?token= links, native HTTPS with HSTS and socket.io over it. The browser side
// (CSP in practice, framing, the token leaving the URL, TLS end to end) is
// test/e2e/security.test.ts.

import { expect } from 'chai';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import express from 'express';
import type { AddressInfo } from 'node:net';
import { WEB_ROOT, jsonErrorHandler } from '../../src/http/app.js';
import type { Hub } from '../../src/hub/Hub.js';
import { PROJECT_ROOT, TEST_SECRET, startTestHub, token } from '../support/hub.js';
import { makeTestCertificate, type TestCertificate } from '../support/tls.js';

const EXPECTED = {
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cross-origin-opener-policy': 'same-origin',
};

function expectSecurityHeaders(headers: Headers | Record<string, string | string[] | undefined>, what: string, tls = false): void {
  const get = (name: string) => (headers instanceof Headers ? headers.get(name) : (headers[name] as string | undefined)) ?? null;
  for (const [name, value] of Object.entries(EXPECTED)) expect(get(name), `${name} on ${what}`).to.equal(value);
  const csp = get('content-security-policy');
  expect(csp, `CSP on ${what}`).to.be.a('string');
  const directives = new Map(csp!.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name!, values]));
  expect(directives.get('default-src'), what).to.deep.equal(["'self'"]);
  expect(directives.get('script-src'), what).to.deep.equal(["'self'"]);
  expect(directives.get('style-src'), what).to.deep.equal(["'self'"]);
  expect(directives.get('img-src'), what).to.deep.equal(["'self'", 'data:']);
  expect(directives.get('media-src'), what).to.deep.equal(["'self'", 'blob:']);
  expect(directives.get('frame-ancestors'), what).to.deep.equal(["'none'"]);
  expect(directives.get('base-uri'), what).to.deep.equal(["'none'"]);
  expect(directives.get('form-action'), what).to.deep.equal(["'none'"]);
  const connect = directives.get('connect-src')!;
  expect(connect[0], what).to.equal("'self'");
  for (const source of connect.slice(1)) expect(source, what).to.match(tls ? /^wss:\/\/127\.0\.0\.1:\d+$/ : /^wss?:\/\/127\.0\.0\.1:\d+$/);
  expect(connect.some((s) => s.startsWith('wss://')), what).to.equal(true);
  expect(csp, what).not.to.match(/unsafe-inline|unsafe-eval|\*/);
  const permissions = get('permissions-policy')!;
  for (const feature of ['camera', 'microphone', 'display-capture']) expect(permissions, what).to.include(`${feature}=(self)`);
  if (tls) expect(get('strict-transport-security'), what).to.equal('max-age=31536000');
  else expect(get('strict-transport-security'), `no HSTS over plain http (${what})`).to.equal(null);
}

/** A JSON error body with nothing of the server's insides: no stack frame, no path on disk. */
async function expectJsonError(response: Response, status: number, code: string): Promise<string> {
  expect(response.status).to.equal(status);
  expect(response.headers.get('content-type')).to.match(/^application\/json/);
  const text = await response.text();
  const body = JSON.parse(text) as { error: { code: string; message: string } };
  expect(Object.keys(body)).to.deep.equal(['error']);
  expect(body.error.code).to.equal(code);
  expect(body.error.message).to.be.a('string').and.not.equal('');
  expect(text).not.to.include(PROJECT_ROOT);
  expect(text).not.to.match(/node_modules|\bat \w+ \(|\.js:\d+/);
  expectSecurityHeaders(response.headers, `${status} ${code}`);
  return body.error.message;
}

describe('HTTP security: headers, errors and links', () => {
  let hub: Hub;
  before(async () => {
    hub = await startTestHub();
  });
  after(() => hub.close());

  it('every answer carries the security headers: page, script, stylesheet, icon, API, errors, socket.io', async () => {
    for (const path of ['/', '/conference/ward-1', '/site/ward-1', '/ops', '/app.js', '/app.css', '/favicon.svg', '/healthz', '/readyz']) {
      const response = await fetch(`${hub.url}${path}`);
      expect(response.status, path).to.equal(200);
      expectSecurityHeaders(response.headers, path);
    }
    const api = await fetch(`${hub.url}/api/conferences`, { headers: { authorization: `Bearer ${token('engineer', '*')}` } });
    expect(api.status).to.equal(200);
    expectSecurityHeaders(api.headers, 'API');
    await expectJsonError(await fetch(`${hub.url}/api/conferences`), 401, 'unauthorized');
    await expectJsonError(await fetch(`${hub.url}/api/conferences`, { headers: { authorization: `Bearer ${token('specialist', 'ward-1')}` } }), 403, 'forbidden');
    await expectJsonError(await fetch(`${hub.url}/no/such/route`), 404, 'not_found');
    // engine.io answers its own routes; its handshake carries the headers too.
    const polling = await fetch(`${hub.url}/socket.io/?EIO=4&transport=polling`);
    for (const [name, value] of Object.entries(EXPECTED)) expect(polling.headers.get(name), `${name} on socket.io`).to.equal(value);
  });

  it('the page shell loads nothing but its script before the token is taken out of the URL, and has no inline code or style', async () => {
    const html = await (await fetch(`${hub.url}/conference/ward-1`)).text();
    const loads = [...html.matchAll(/<(script|link|img|iframe|style)\b[^>]*>/gi)].map((m) => m[0]);
    expect(loads).to.deep.equal(['<script type="module" src="/app.js">']);
    expect(html).not.to.match(/\sstyle=|\son\w+=/i);
  });

  it('serves no source map: none is built into the served folder, none is referenced, and *.map is refused', async () => {
    expect(existsSync(join(WEB_ROOT, 'app.js.map'))).to.equal(false);
    const js = await (await fetch(`${hub.url}/app.js`)).text();
    expect(js).not.to.include('sourceMappingURL');
    // Even a map left in the folder by some other build is not served.
    const stray = join(WEB_ROOT, 'app.js.map');
    writeFileSync(stray, '{"version":3,"sources":["secret.ts"]}');
    try {
      await expectJsonError(await fetch(`${hub.url}/app.js.map`), 404, 'not_found');
    } finally {
      rmSync(stray, { force: true });
    }
  });

  it('a body too large answers a JSON 413', async () => {
    const response = await fetch(`${hub.url}/api/conferences/ward-1/ingests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token('site', 'ward-1')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ deviceId: 'us-1', displayName: 'x'.repeat(64 * 1024) }),
    });
    expect(await expectJsonError(response, 413, 'payload_too_large')).to.match(/too large/);
  });

  it('a malformed percent-encoding in a route parameter answers a JSON 400, with or without a token', async () => {
    for (const path of ['/conference/%E0%A4%A', '/site/%zz', '/api/conferences/%E0%A4%A/ingests/x']) {
      expect(await expectJsonError(await fetch(`${hub.url}${path}`), 400, 'bad_request'), path).to.match(/percent-encoding/);
    }
    const withToken = await fetch(`${hub.url}/api/conferences/%E0%A4%A/ingests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token('site', 'ward-1')}`, 'content-type': 'application/json' },
      body: '{}',
    });
    await expectJsonError(withToken, 400, 'bad_request');
    await expectJsonError(
      await fetch(`${hub.url}/api/conferences/ward-1/ingests`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token('site', 'ward-1')}`, 'content-type': 'application/json' },
        body: '{not json',
      }),
      400,
      'bad_request',
    );
  });

  it('any other express error answers JSON too: an unsupported charset or encoding (415)', async () => {
    const post = (headers: Record<string, string>) =>
      fetch(`${hub.url}/api/conferences/ward-1/ingests`, { method: 'POST', headers: { authorization: `Bearer ${token('site', 'ward-1')}`, ...headers }, body: '{}' });
    expect(await expectJsonError(await post({ 'content-type': 'application/json; charset=latin-9' }), 415, 'unsupported_media_type')).to.match(/charset/);
    expect(await expectJsonError(await post({ 'content-type': 'application/json', 'content-encoding': 'bogus' }), 415, 'unsupported_media_type')).to.match(/encoding/);
  });

  it('an exception in a handler answers a JSON 500 without its message or stack', async () => {
    // The hub's own handler on a throwaway app: no hub route throws on purpose.
    const app = express();
    app.get('/boom', () => {
      throw new Error(`secret detail at ${PROJECT_ROOT}/src/x.ts:1`);
    });
    app.use(jsonErrorHandler);
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/boom`);
      expect(response.status).to.equal(500);
      const text = await response.text();
      expect(JSON.parse(text)).to.deep.equal({ error: { code: 'internal', message: 'internal error' } });
    } finally {
      server.close();
    }
  });

  it('refuses a link with ?token=: redirects to the same page without it, marked so the page says the format changed', async () => {
    const secret = token('specialist', 'ward-1');
    for (const [path, expected] of [
      [`/conference/ward-1?token=${secret}`, '/conference/ward-1#old-link-format'],
      [`/site/ward-1?lang=vi&token=${secret}`, '/site/ward-1?lang=vi#old-link-format'],
      [`/ops?token=${secret}`, '/ops#old-link-format'],
      [`/?conference=ward-1&token=${secret}`, '/?conference=ward-1#old-link-format'],
    ] as const) {
      const response = await fetch(`${hub.url}${path}`, { redirect: 'manual' });
      expect(response.status, path).to.equal(303);
      expect(response.headers.get('location'), path).to.equal(expected);
      expect(response.headers.get('cache-control')).to.equal('no-store');
      expectSecurityHeaders(response.headers, `redirect of ${path}`);
    }
  });
});

describe('HTTP security: config for TLS and the HTTP bind address', () => {
  const secret = { HOICHAN_JWT_SECRET: TEST_SECRET };

  it('HOICHAN_HTTP_LISTEN_IP sets http.listenIp and HOICHAN_LISTEN_IP media.listenIp, each alone', () => {
    const config = loadConfig({ env: { ...secret, HOICHAN_HTTP_LISTEN_IP: '127.0.0.1', HOICHAN_LISTEN_IP: '10.1.2.3' } });
    expect(config.http.listenIp).to.equal('127.0.0.1');
    expect(config.media.listenIp).to.equal('10.1.2.3');
    expect(() => loadConfig({ env: { ...secret, HOICHAN_HTTP_LISTEN_IP: 'everywhere' } })).to.throw(ConfigError, /http\.listenIp \(from HOICHAN_HTTP_LISTEN_IP\)/);
  });

  it('tls.cert and tls.key come from HOICHAN_TLS_CERT / HOICHAN_TLS_KEY, and go together', () => {
    expect(loadConfig({ env: secret }).tls).to.deep.equal({ cert: null, key: null });
    expect(loadConfig({ env: { ...secret, HOICHAN_TLS_CERT: '/etc/c.pem', HOICHAN_TLS_KEY: '/etc/k.pem' } }).tls).to.deep.equal({ cert: '/etc/c.pem', key: '/etc/k.pem' });
    expect(() => loadConfig({ env: { ...secret, HOICHAN_TLS_CERT: '/etc/c.pem' } })).to.throw(ConfigError, /tls\.key: tls\.cert and tls\.key go together/);
    expect(() => loadConfig({ env: { ...secret, HOICHAN_TLS_KEY: '/etc/k.pem' } })).to.throw(ConfigError, /tls\.cert: /);
  });

  it('a hub whose certificate file cannot be read does not start, and says which key', async () => {
    let error: Error | undefined;
    try {
      const hub = await startTestHub({ tls: { cert: '/nonexistent/cert.pem', key: '/nonexistent/key.pem' } });
      await hub.close();
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).to.match(/cannot read tls\.cert \/nonexistent\/cert\.pem \(HOICHAN_TLS_CERT\)/);
  });
});

describe('HTTP security: native HTTPS', () => {
  let hub: Hub;
  let certificate: TestCertificate;
  before(async () => {
    certificate = makeTestCertificate();
    hub = await startTestHub({ tls: { cert: certificate.certPath, key: certificate.keyPath } });
  });
  after(async () => {
    await hub?.close();
    certificate?.remove();
  });

  const get = (path: string) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
      const req = httpsRequest(`${hub.url}${path}`, { ca: certificate.cert }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });

  it('serves HTTPS with HSTS on every answer, and a CSP that names only wss://', async () => {
    expect(hub.url).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
    for (const path of ['/conference/ward-1', '/app.js', '/healthz', '/no/such/route']) {
      const response = await get(path);
      expect(response.status, path).to.equal(path === '/no/such/route' ? 404 : 200);
      expectSecurityHeaders(response.headers, `https ${path}`, true);
    }
    // A client that does not trust the certificate is refused by TLS itself.
    const untrusted = await fetch(`${hub.url}/healthz`).then(
      () => 'connected',
      (err: Error) => String((err.cause as Error | undefined)?.message ?? err.message),
    );
    expect(untrusted).to.match(/self[- ]signed|certificate/i);
  });

  it('socket.io runs over it (wss): a specialist joins', async () => {
    const socket = io(hub.url, { auth: { token: token('specialist', 'ward-tls') }, transports: ['websocket'], reconnection: false, forceNew: true, ca: certificate.cert.toString() });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('connect_error', reject);
      });
      const reply = await socket.timeout(10_000).emitWithAck('join', { conferenceId: 'ward-tls', displayName: 'Dr TLS' });
      expect(reply.ok).to.equal(true);
    } finally {
      socket.close();
    }
  });
});

describe('HTTP security: the demo binds loopback', () => {
  it('puts HTTP and media on 127.0.0.1 unless each address is chosen', async () => {
    const { demoBinding } = await import('../../src/demo/bind.js');
    const demo = (env: NodeJS.ProcessEnv, file?: string) =>
      loadConfig({ env: { ...env }, overrides: { auth: { demo: true }, ...demoBinding(env, file).overrides } });
    const plain = demo({});
    expect(plain.http.listenIp).to.equal('127.0.0.1');
    expect(plain.media.listenIp).to.equal('127.0.0.1');
    const httpChosen = demo({ HOICHAN_HTTP_LISTEN_IP: '0.0.0.0' });
    expect(httpChosen.http.listenIp).to.equal('0.0.0.0');
    expect(httpChosen.media.listenIp).to.equal('127.0.0.1');
    const mediaChosen = demo({ HOICHAN_LISTEN_IP: '0.0.0.0' });
    expect(mediaChosen.http.listenIp).to.equal('127.0.0.1');
    expect(mediaChosen.media.listenIp).to.equal('0.0.0.0');
    expect(demoBinding({ HOICHAN_CONFIG: '/etc/hoichan.json' }, undefined).overrides).to.deep.equal({});
  });
});
