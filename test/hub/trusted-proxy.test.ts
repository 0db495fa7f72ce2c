import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { io } from 'socket.io-client';
import type { AuditRecord } from '../../src/audit/events.js';
import { listDayFiles } from '../../src/audit/files.js';
import { TrustedProxies } from '../../src/common/clientAddress.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import type { Hub } from '../../src/hub/Hub.js';
import { TEST_SECRET, startTestHub, token } from '../support/hub.js';

// Behind a reverse proxy every TCP peer is the proxy. X-Forwarded-For names the
// client only when the peer is in http.trustedProxies; otherwise anyone could
// pick the address the per-IP limits count and the audit log records.

/** A socket.io handshake as a proxy would pass it on, with the X-Forwarded-For it set; resolves with the connect_error message or null. */
function handshake(url: string, authToken: string, forwardedFor: string, keep: Array<() => void>): Promise<string | null> {
  const socket = io(url, { auth: { token: authToken }, transports: ['websocket'], reconnection: false, forceNew: true, extraHeaders: { 'x-forwarded-for': forwardedFor } });
  keep.push(() => socket.close());
  return new Promise((resolve) => {
    socket.once('connect', () => resolve(null));
    socket.once('connect_error', (err) => resolve(err.message));
  });
}

async function records(hub: Hub): Promise<AuditRecord[]> {
  await hub.audit!.flush();
  return (await listDayFiles(hub.audit!.dir)).flatMap((f) => readFileSync(f.path, 'utf8').split('\n').filter(Boolean)).map((l) => JSON.parse(l) as AuditRecord);
}

const api = (hub: Hub, forwardedFor: string) => fetch(`${hub.url}/api/conferences`, { headers: { authorization: `Bearer ${token('engineer', '*', 'Ops')}`, 'x-forwarded-for': forwardedFor } });

describe('trusted proxies: the client address behind a reverse proxy', function () {
  this.timeout(60_000);
  let hub: Hub | undefined;
  const closers: Array<() => void> = [];

  afterEach(async () => {
    for (const close of closers.splice(0)) close();
    await hub?.close();
    hub = undefined;
  });

  it('reads X-Forwarded-For right to left, from trusted peers only', () => {
    const proxies = new TrustedProxies(['127.0.0.1', '10.0.0.0/8', '::1']);
    expect(proxies.clientOf('127.0.0.1', '203.0.113.5')).to.equal('203.0.113.5');
    expect(proxies.clientOf('::ffff:127.0.0.1', '203.0.113.5')).to.equal('203.0.113.5');
    // The client prepended a forged entry; the proxy appended what it saw.
    expect(proxies.clientOf('127.0.0.1', '6.6.6.6, 203.0.113.5')).to.equal('203.0.113.5');
    // Two trusted hops (nginx, then an internal balancer) are skipped.
    expect(proxies.clientOf('10.1.2.3', '203.0.113.5, 10.9.9.9')).to.equal('203.0.113.5');
    expect(proxies.clientOf('127.0.0.1', undefined)).to.equal('127.0.0.1');
    expect(proxies.clientOf('127.0.0.1', 'garbage')).to.equal('127.0.0.1');
    // From an untrusted peer the header is ignored.
    expect(proxies.clientOf('198.51.100.1', '203.0.113.5')).to.equal('198.51.100.1');
    expect(new TrustedProxies().clientOf('127.0.0.1', '203.0.113.5')).to.equal('127.0.0.1');
    expect(() => new TrustedProxies(['10.0.0.0/33'])).to.throw('not an IP address or CIDR: 10.0.0.0/33');
    const env = { HOICHAN_JWT_SECRET: TEST_SECRET };
    expect(() => loadConfig({ env, overrides: { http: { trustedProxies: ['nginx.local'] } } })).to.throw(ConfigError, 'http.trustedProxies.0: not an IP address or CIDR: nginx.local');
    expect(loadConfig({ env: { ...env, HOICHAN_TRUSTED_PROXIES: '127.0.0.1, 10.0.0.0/8' } }).http.trustedProxies).to.deep.equal(['127.0.0.1', '10.0.0.0/8']);
  });

  it('without a trusted proxy a forged X-Forwarded-For is ignored: the per-IP cap, the HTTP limit and the audit log see the real peer', async () => {
    hub = await startTestHub({ signaling: { maxConnectionsPerUser: 10, maxConnectionsPerIp: 2 }, http: { requestsPerSecond: 0.01, requestBurst: 2 } });
    expect(await handshake(hub.url, token('specialist', 'tp', 'a'), '203.0.113.1', closers)).to.equal(null);
    expect(await handshake(hub.url, token('specialist', 'tp', 'b'), '203.0.113.2', closers)).to.equal(null);
    expect(await handshake(hub.url, token('specialist', 'tp', 'c'), '203.0.113.3', closers)).to.equal('too_many_connections');
    expect(await handshake(hub.url, 'not-a-jwt', '203.0.113.4', closers)).to.equal('unauthorized');

    const statuses = [];
    for (const xff of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) statuses.push((await api(hub, xff)).status);
    expect(statuses).to.deep.equal([200, 200, 429]);

    const refused = (await records(hub)).filter((r) => r.type === 'auth.refused');
    expect(refused.map((r) => r.actor.ip)).to.deep.equal(['127.0.0.1']);
  });

  it('with 127.0.0.1 trusted: clients behind it get their own per-IP buckets, and the audit log records their addresses', async () => {
    hub = await startTestHub({ http: { trustedProxies: ['127.0.0.1'], requestsPerSecond: 0.01, requestBurst: 2 }, signaling: { maxConnectionsPerUser: 10, maxConnectionsPerIp: 2 } });
    expect(await handshake(hub.url, token('specialist', 'tp', 'a'), '203.0.113.1', closers)).to.equal(null);
    expect(await handshake(hub.url, token('specialist', 'tp', 'b'), '203.0.113.1', closers)).to.equal(null);
    expect(await handshake(hub.url, token('specialist', 'tp', 'c'), '203.0.113.1', closers)).to.equal('too_many_connections');
    // Another client behind the same proxy has its own cap.
    expect(await handshake(hub.url, token('specialist', 'tp', 'd'), '203.0.113.2', closers)).to.equal(null);
    // A forged left-hand entry does not move a client into someone else's bucket.
    expect(await handshake(hub.url, token('specialist', 'tp', 'e'), '203.0.113.2, 203.0.113.1', closers)).to.equal('too_many_connections');
    expect(await handshake(hub.url, 'not-a-jwt', '198.51.100.7', closers)).to.equal('unauthorized');

    const statuses = [];
    for (const xff of ['203.0.113.1', '203.0.113.1', '203.0.113.1', '203.0.113.2']) statuses.push((await api(hub, xff)).status);
    expect(statuses).to.deep.equal([200, 200, 429, 200]);
    const refusedHttp = await fetch(`${hub.url}/api/conferences`, { headers: { 'x-forwarded-for': '198.51.100.8' } });
    expect(refusedHttp.status).to.equal(401);

    const all = await records(hub);
    const refused = all.filter((r) => r.type === 'auth.refused').map((r) => [r.target?.via, r.actor.ip]);
    expect(refused).to.deep.include.members([
      ['signaling', '198.51.100.7'],
      ['http', '198.51.100.8'],
    ]);
    const engineerIps = all.filter((r) => r.type === 'engineer.api').map((r) => r.actor.ip);
    expect(engineerIps).to.include.members(['203.0.113.1', '203.0.113.2']);
  });
});
