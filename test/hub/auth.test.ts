import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import type { AuthRefused } from '../../src/auth/index.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SiteAgent } from '../../src/agent/SiteAgent.js';
import type { ReadingSink } from '../../src/devices/driver.js';
import { loadDriverFactories } from '../../src/devices/registry.js';
import type { Hub } from '../../src/hub/Hub.js';
import { SyntheticDriver, testAgentConfig } from '../agent/uplink-helpers.js';
import { TEST_SECRET, TestClient, agentToken, startTestHub, testAuth, token, waitUntil } from '../support/hub.js';

// The hub's front doors against the credentials of issue 10: each token opens
// only the endpoint and the conference it was issued for, dies at its exp (or
// lives on with a refreshed one), and a revocation cuts it at once.

const now = () => Math.floor(Date.now() / 1000);

function refused(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'accepted',
    (err: Error) => err.message,
  );
}

function device(deviceId: string, conferenceId: string) {
  return { deviceId, conferenceId, type: 'vitals', model: 'test monitor', protocol: 'hl7-mllp', status: 'online', channels: [], acked: 0, lastSeq: 0 };
}

function hello(siteId: string, devices: ReturnType<typeof device>[]) {
  return { version: 1, siteId, clock: { offsetMs: 0, rttMs: 1 }, devices };
}

function alarm(deviceId: string, seq: number) {
  const t = Date.now();
  return { deviceId, reading: { deviceId, seq, t, rt: t, kind: 'alarm', code: 'ASYSTOLE', unit: '', priority: 'high', text: 'ASYSTOLE', active: true } };
}

/** A person token with the given ttl, signed by the test hub's key: for short-lived sockets. */
const shortToken = (role: 'specialist' | 'site', conf: string, name: string, ttlSeconds: number, sub = `${role}-${name}`) =>
  testAuth.sign({ kind: 'person', sub, name, role, conf, ttlSeconds });

describe('credentials by purpose (hub)', function () {
  this.timeout(60_000);
  let hub: Hub;
  const clients: TestClient[] = [];
  const connect = async (url: string, tokenText: string | undefined, options: { reconnection?: boolean } = {}) => {
    const client = await TestClient.connect(url, tokenText, options);
    clients.push(client);
    return client;
  };

  before(async () => {
    hub = await startTestHub({ signaling: { reconnectGraceMs: 5000 } });
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  after(async () => {
    await hub.close();
  });

  describe('each token opens only its own endpoint', () => {
    it('an agent credential cannot use signaling or the HTTP API, and a person token cannot use the uplink', async () => {
      const events: AuthRefused[] = [];
      hub.auth.events.on('refused', (e) => events.push(e));
      const agent = agentToken('tram-1', 'hc-a');
      expect(await refused(connect(hub.url, agent))).to.equal('unauthorized');
      const ingest = await fetch(`${hub.url}/api/conferences/hc-a/ingests`, { method: 'POST', headers: { authorization: `Bearer ${agent}`, 'content-type': 'application/json' }, body: '{"deviceId":"us-1"}' });
      expect(ingest.status).to.equal(401);
      expect(((await ingest.json()) as any).error.message).to.equal('token is not for the api endpoint');
      expect(await refused(connect(`${hub.url}/uplink`, token('site', 'hc-a')))).to.equal('unauthorized');
      hub.auth.events.removeAllListeners('refused');
      expect(events.map((e) => [e.endpoint, e.reason])).to.deep.equal([
        ['signaling', 'token is not for the signaling endpoint'],
        ['api', 'token is not for the api endpoint'],
        ['uplink', 'token is not for the uplink endpoint'],
      ]);
      expect(events.every((e) => e.sub && e.jti && !JSON.stringify(e).includes(agent.split('.')[2]!))).to.equal(true);
    });

    it("a site token joins only its one conference; a '*' site token is refused at the handshake", async () => {
      const site = await connect(hub.url, token('site', 'hc-a', 'Tram Y te A'));
      const other = await site.request('join', { conferenceId: 'hc-b' });
      expect(!other.ok && other.error.code).to.equal('forbidden');
      await site.ok('join', { conferenceId: 'hc-a' });
      const star = jwt.sign(
        { iss: 'hoichan', aud: ['hoichan-signaling'], jti: 'jti-star-0001', sub: 'tram', name: 'Tram', role: 'site', conf: '*' },
        TEST_SECRET,
        { expiresIn: 600, keyid: 'default' },
      );
      expect(await refused(connect(hub.url, star))).to.equal('unauthorized');
    });

    it('the name others see is the token name; displayName in join is ignored', async () => {
      const a = await connect(hub.url, token('specialist', 'hc-names', 'BS Lan'));
      const b = await connect(hub.url, token('site', 'hc-names', 'Tram Y te Con Dao'));
      const joinedA = await a.ok('join', { conferenceId: 'hc-names', displayName: 'PGS.TS. Nguyễn Văn A (Bạch Mai)' });
      const joinedB = await b.ok('join', { conferenceId: 'hc-names' });
      expect(joinedB.peers).to.deep.equal([{ peerId: joinedA.peerId, displayName: 'BS Lan', role: 'specialist' }]);
      expect(await a.waitFor('peerJoined')).to.deep.equal({ peerId: joinedB.peerId, displayName: 'Tram Y te Con Dao', role: 'site' });
      expect(hub.conferences.get('hc-names')!.getPeer(joinedA.peerId)!.summary.displayName).to.equal('BS Lan');
    });
  });

  describe('agent tokens are bound to their site, conferences and devices', () => {
    it('cannot announce a device, or send an ASYSTOLE alarm, into a conference the token does not list', async () => {
      const viewerC = await connect(hub.url, token('specialist', 'hc-c', 'BS C'));
      await viewerC.ok('join', { conferenceId: 'hc-c' });
      const viewerA = await connect(hub.url, token('specialist', 'hc-a', 'BS A'));
      await viewerA.ok('join', { conferenceId: 'hc-a' });
      const agent = await connect(`${hub.url}/uplink`, agentToken('tram-attack', 'hc-a'));
      const reply = await agent.ok('hello', hello('tram-attack', [device('fake-monitor', 'hc-c'), device('real-monitor', 'hc-a')]));
      expect(reply.devices.map((d: { deviceId: string }) => d.deviceId)).to.deep.equal(['real-monitor']);
      expect(reply.rejected).to.deep.equal([
        { deviceId: 'fake-monitor', code: 'forbidden', message: 'device fake-monitor is attached to conference hc-c, which this agent token does not grant' },
      ]);
      const fake = await agent.request('alarm', alarm('fake-monitor', 1));
      expect(!fake.ok && fake.error.code).to.equal('not_found');
      expect(hub.streams!.devicesOf('hc-c')).to.deep.equal([]);
      // The granted device's alarm reaches its own conference, and the other conference heard nothing.
      await agent.ok('alarm', alarm('real-monitor', 1));
      await viewerA.waitFor('deviceAlarm', (d) => d.deviceId === 'real-monitor');
      expect(viewerC.events.filter((e) => e.name.startsWith('device'))).to.deep.equal([]);
    });

    it('with a device list, only the listed devices may be announced; and only under its own site id', async () => {
      const agent = await connect(`${hub.url}/uplink`, agentToken('tram-list', ['hc-a', 'hc-d'], ['bed1-monitor']));
      const reply = await agent.ok('hello', hello('tram-list', [device('bed1-monitor', 'hc-d'), device('bed2-monitor', 'hc-a')]));
      expect(reply.devices.map((d: { deviceId: string }) => d.deviceId)).to.deep.equal(['bed1-monitor']);
      expect(reply.rejected[0]).to.deep.include({ deviceId: 'bed2-monitor', code: 'forbidden', message: "device bed2-monitor is not in this agent token's device list" });
      const otherSite = await agent.request('hello', hello('another-site', [device('bed1-monitor', 'hc-d')]));
      expect(!otherSite.ok && otherSite.error.code).to.equal('forbidden');
    });
  });

  describe('expiry and refresh', () => {
    it('cuts a signaling socket at exp; a refreshed token keeps another one alive without rejoining', async () => {
      const ttl = 5;
      const doomed = await connect(hub.url, shortToken('specialist', 'hc-exp', 'BS Het Han', ttl));
      const kept = await connect(hub.url, shortToken('site', 'hc-exp', 'Tram Con', ttl));
      const joinedDoomed = await doomed.ok('join', { conferenceId: 'hc-exp' });
      const joinedKept = await kept.ok('join', { conferenceId: 'hc-exp' });
      // A refresh must be for the same subject, role and conference.
      const wider = await kept.request('refreshToken', { token: token('site', 'hc-other', 'Tram Con') });
      expect(!wider.ok && wider.error).to.deep.equal({ code: 'forbidden', message: 'a refreshed token must be for the same subject, role and scope' });
      const stale = await kept.request('refreshToken', { token: jwt.sign({ iss: 'hoichan', aud: ['hoichan-signaling'], jti: 'jti-stale-001', sub: 'site-Tram Con', name: 'x', role: 'site', conf: 'hc-exp', iat: now() - 100, exp: now() - 1 }, TEST_SECRET, { keyid: 'default' }) });
      expect(!stale.ok && stale.error).to.deep.equal({ code: 'unauthorized', message: 'token expired' });
      const refreshed = await kept.ok('refreshToken', { token: shortToken('site', 'hc-exp', 'Tram Con', 600) });
      expect(refreshed.exp).to.be.greaterThan(now() + 500);

      const cut = new Promise<string>((resolve) => doomed.socket.once('disconnect', (reason) => resolve(reason)));
      expect(await cut).to.equal('io server disconnect');
      expect(doomed.events.map((e) => e.name)).to.include('tokenExpired');
      expect(await kept.waitFor('peerLeft', (p) => p.peerId === joinedDoomed.peerId)).to.deep.equal({ peerId: joinedDoomed.peerId });
      // Past the old exp, the refreshed socket is the same peer and still works.
      expect(kept.socket.connected).to.equal(true);
      await kept.ok('createTransport', { direction: 'recv' });
      expect(hub.conferences.get('hc-exp')!.getPeer(joinedKept.peerId)).to.not.equal(undefined);
      expect(kept.events.map((e) => e.name)).to.not.include('tokenExpired');
    });

    it('cuts an uplink socket at exp; a refreshed agent token keeps another one streaming', async () => {
      const short = (site: string, ttl: number) => testAuth.sign({ kind: 'agent', siteId: site, name: site, conferences: ['hc-up'], ttlSeconds: ttl });
      const doomed = await connect(`${hub.url}/uplink`, short('tram-exp-1', 5));
      const kept = await connect(`${hub.url}/uplink`, short('tram-exp-2', 5));
      await doomed.ok('hello', hello('tram-exp-1', [device('mon-exp-1', 'hc-up')]));
      await kept.ok('hello', hello('tram-exp-2', [device('mon-exp-2', 'hc-up')]));
      const otherSite = await kept.request('refreshToken', { token: short('tram-exp-1', 600) });
      expect(!otherSite.ok && otherSite.error.code).to.equal('forbidden');
      const widened = await kept.request('refreshToken', { token: agentToken('tram-exp-2', ['hc-up', 'hc-c']) });
      expect(!widened.ok && widened.error.code).to.equal('forbidden');
      await kept.ok('refreshToken', { token: short('tram-exp-2', 600) });

      const cut = new Promise<string>((resolve) => doomed.socket.once('disconnect', (reason) => resolve(reason)));
      expect(await cut).to.equal('io server disconnect');
      expect(doomed.events.map((e) => e.name)).to.include('tokenExpired');
      const t = Date.now();
      const batch = await kept.ok('batch', { deviceId: 'mon-exp-2', from: 1, to: 1, readings: [{ deviceId: 'mon-exp-2', seq: 1, kind: 'numeric', code: 'HR', unit: '/min', t, rt: t, value: 72 }] });
      expect(batch.acked).to.equal(1);
    });
  });

  it('a site agent with a token file presents the renewed file on its live uplink before exp: no reconnect', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoichan-agent-renew-'));
    const tokenFile = join(dir, 'site-token.jwt');
    const agentTokenFor = (ttlSeconds: number) => testAuth.sign({ kind: 'agent', siteId: 'tram-renew', name: 'Tram renew', conferences: ['hc-renew'], ttlSeconds });
    const first = agentTokenFor(8);
    writeFileSync(tokenFile, first);
    // A control connection with the very same token: the hub cuts it at that exp.
    const control = await connect(`${hub.url}/uplink`, first);
    const cut = new Promise<string>((resolve) => control.socket.once('disconnect', (reason) => resolve(reason)));
    const factories = { ...(await loadDriverFactories()), cms50: (deviceId: string, _settings: unknown, sink: ReadingSink) => new SyntheticDriver(deviceId, sink, 20) };
    const config = testAgentConfig({ siteId: 'tram-renew', conferenceId: 'hc-renew', hubUrl: hub.url, journalDir: join(dir, 'journal'), devices: [{ id: 'renew-ecg', type: 'ecg', model: 'synthetic', protocol: 'cms50', settings: { path: '/dev/null' } }], hub: { token: undefined, tokenFile } });
    const agent = await SiteAgent.start(config, { factories });
    try {
      const drops: string[] = [];
      agent.uplink.on('disconnected', (reason) => drops.push(reason));
      const refreshed = new Promise<number>((resolve) => agent.uplink.once('tokenRefreshed', resolve));
      await waitUntil(() => agent.uplink.connected, 10_000, 'the agent to connect');
      writeFileSync(tokenFile, agentTokenFor(600));
      expect(await refreshed).to.be.greaterThan(now() + 500);
      expect(await cut).to.equal('io server disconnect');
      // Past the first token's exp the same connection keeps delivering.
      const acked = agent.uplink.outboxes()[0]!.acked;
      await waitUntil(() => agent.uplink.outboxes()[0]!.acked > acked + 5, 10_000, 'more acks after the old exp');
      expect(drops).to.deep.equal([]);
    } finally {
      await agent.stop();
    }
  });

  describe('revocation', () => {
    it('revoking a jti cuts the live socket; the token cannot connect again or resume its session', async () => {
      const revokedToken = token('specialist', 'hc-rev', 'BS Rev');
      const a = await connect(hub.url, revokedToken, { reconnection: true });
      const b = await connect(hub.url, token('site', 'hc-rev', 'Tram Rev'));
      const joinedA = await a.ok('join', { conferenceId: 'hc-rev' });
      await b.ok('join', { conferenceId: 'hc-rev' });
      const cut = new Promise<string>((resolve) => a.socket.once('disconnect', (reason) => resolve(reason)));
      const claims = await hub.auth.verify(revokedToken, 'signaling');
      await hub.auth.revoke(hub.auth.revocationOfToken(claims));
      expect(await cut).to.equal('io server disconnect');
      expect(a.events.map((e) => e.name)).to.include('tokenRevoked');
      await b.waitFor('peerLeft', (p) => p.peerId === joinedA.peerId);
      expect(await refused(connect(hub.url, revokedToken))).to.equal('unauthorized');
      const http = await fetch(`${hub.url}/api/conferences/hc-rev/ingests`, { method: 'POST', headers: { authorization: `Bearer ${revokedToken}` } });
      expect(http.status).to.equal(401);
    });

    it('a dropped link whose token is revoked meanwhile does not get its peer back on reconnect', async () => {
      const revokedToken = token('specialist', 'hc-resume', 'BS Resume');
      const a = await connect(hub.url, revokedToken, { reconnection: true });
      const b = await connect(hub.url, token('site', 'hc-resume', 'Tram Resume'));
      const joinedA = await a.ok('join', { conferenceId: 'hc-resume' });
      await b.ok('join', { conferenceId: 'hc-resume' });
      const retried = new Promise<string>((resolve) => a.socket.io.once('reconnect_attempt', () => a.socket.once('connect_error', (err) => resolve(err.message))));
      a.socket.io.engine.close(); // the link drops; the client tries to recover its session
      await hub.auth.revoke(hub.auth.revocationOfToken(await testAuth.verify(revokedToken, 'signaling')));
      expect(await retried).to.equal('unauthorized');
      a.socket.io.reconnection(false);
      await b.waitFor('peerLeft', (p) => p.peerId === joinedA.peerId, 15_000);
    });

    it('revoking a subject cuts its uplink and refuses its older tokens, but not one issued after', async () => {
      const agent = await connect(`${hub.url}/uplink`, agentToken('tram-lost-pc', 'hc-a'));
      await agent.ok('hello', hello('tram-lost-pc', [device('mon-lost', 'hc-a')]));
      const cut = new Promise<string>((resolve) => agent.socket.once('disconnect', (reason) => resolve(reason)));
      const older = agentToken('tram-lost-pc', 'hc-a');
      await hub.auth.revoke(hub.auth.revocationOfSubject('tram-lost-pc', now() + 1));
      expect(await cut).to.equal('io server disconnect');
      expect(await refused(connect(`${hub.url}/uplink`, older))).to.equal('unauthorized');
      // A new credential for the reinstalled PC, issued after the cut-off.
      const newer = testAuth.sign({ kind: 'agent', siteId: 'tram-lost-pc', name: 'x', conferences: ['hc-a'], ttlSeconds: 600 });
      const payload = JSON.parse(Buffer.from(newer.split('.')[1]!, 'base64url').toString()) as { iat: number };
      await waitUntil(() => now() > payload.iat, 5000, 'a second to pass');
      const fresh = testAuth.sign({ kind: 'agent', siteId: 'tram-lost-pc', name: 'x', conferences: ['hc-a'], ttlSeconds: 600 });
      const again = await connect(`${hub.url}/uplink`, fresh);
      await again.ok('hello', hello('tram-lost-pc', [device('mon-lost', 'hc-a')]));
    });
  });
});
