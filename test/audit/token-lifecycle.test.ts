import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import type { AuditRecord } from '../../src/audit/events.js';
import { listDayFiles } from '../../src/audit/files.js';
import { jtiHash } from '../../src/audit/tokens.js';
import type { Hub } from '../../src/hub/Hub.js';
import { TestClient, startTestHub, testAuth, token, waitUntil } from '../support/hub.js';

// A real hub records the token lifecycle of live sockets: cut at exp, cut by a
// revocation, refreshed (or a refresh refused), and each revocation it takes
// in. The records name tokens by a short jti hash, never by the token.

const CONF = 'conf-token-audit';

async function allRecords(hub: Hub): Promise<AuditRecord[]> {
  await hub.audit!.flush();
  return (await listDayFiles(hub.audit!.dir)).flatMap((f) => readFileSync(f.path, 'utf8').split('\n').filter(Boolean)).map((l) => JSON.parse(l) as AuditRecord);
}

async function auditText(hub: Hub): Promise<string> {
  await hub.audit!.flush();
  return (await listDayFiles(hub.audit!.dir)).map((f) => readFileSync(f.path, 'utf8')).join('');
}

const disconnected = (c: TestClient) => new Promise<string>((resolve) => c.socket.once('disconnect', (reason) => resolve(reason)));

describe('audit log: token lifecycle on a real hub', function () {
  this.timeout(60_000);
  let hub: Hub;
  const clients: TestClient[] = [];
  const tokens: string[] = [];

  before(async () => {
    hub = await startTestHub();
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  after(async () => {
    // Whatever the tests did, no token text reached the audit file.
    if (hub) {
      const text = await auditText(hub);
      for (const t of tokens) {
        expect(text).to.not.include(t);
        // Nor any of its three parts (the signature alone would do harm in no one's hands, but neither belongs there).
        for (const part of t.split('.')) expect(text).to.not.include(part);
      }
    }
    await hub?.close();
  });

  it('records a signaling socket cut at its token exp, and an uplink socket cut at exp', async () => {
    const personToken = testAuth.sign({ kind: 'person', sub: 'bs-het-han', name: 'BS Het Han', role: 'specialist', conf: CONF, ttlSeconds: 2 });
    const agentTok = testAuth.sign({ kind: 'agent', siteId: 'tram-het-han', name: 'tram-het-han', conferences: [CONF], ttlSeconds: 2 });
    tokens.push(personToken, agentTok);
    const person = await TestClient.connect(hub.url, personToken);
    const agent = await TestClient.connect(`${hub.url}/uplink`, agentTok);
    clients.push(person, agent);
    const cuts = [disconnected(person), disconnected(agent)];
    await person.ok('join', { conferenceId: CONF });
    expect(await Promise.all(cuts)).to.deep.equal(['io server disconnect', 'io server disconnect']);

    const records = await allRecords(hub);
    const expired = records.filter((r) => r.type === 'token.expired');
    const personRec = expired.find((r) => r.actor.sub === 'bs-het-han');
    expect(personRec, 'a token.expired record for the specialist').to.not.equal(undefined);
    expect(personRec!.actor).to.deep.equal({ sub: 'bs-het-han', role: 'specialist', ip: '127.0.0.1' });
    expect(personRec!.conferenceId).to.equal(CONF);
    expect(personRec!.outcome).to.equal('unauthorized');
    expect(personRec!.target).to.have.property('via', 'signaling');
    expect(personRec!.target!.jti).to.match(/^[0-9a-f]{16}$/);
    // The token has expired (verify would refuse it): its jti is read from the payload.
    const decodedJti = (JSON.parse(Buffer.from(personToken.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti;
    expect(personRec!.target!.jti).to.equal(jtiHash(decodedJti));
    const agentRec = expired.find((r) => r.actor.sub === 'tram-het-han');
    expect(agentRec?.actor.role).to.equal('agent');
    expect(agentRec?.target).to.have.property('via', 'uplink');
    // The leave follows the cut, as for any disconnect.
    expect(records.some((r) => r.type === 'conference.leave' && r.actor.sub === 'bs-het-han')).to.equal(true);
  });

  it('records a socket cut by a revocation, and the revocation itself', async () => {
    const revokedToken = token('specialist', CONF, 'BS Thu Hoi');
    tokens.push(revokedToken);
    const a = await TestClient.connect(hub.url, revokedToken);
    clients.push(a);
    await a.ok('join', { conferenceId: CONF });
    const cut = disconnected(a);
    const claims = await hub.auth.verify(revokedToken, 'signaling');
    await hub.auth.revoke(hub.auth.revocationOfToken(claims));
    expect(await cut).to.equal('io server disconnect');

    await waitUntil(async () => (await allRecords(hub)).some((r) => r.type === 'token.revoked'), 5000, 'the token.revoked record');
    const records = await allRecords(hub);
    const rec = records.find((r) => r.type === 'token.revoked')!;
    expect(rec.actor).to.deep.equal({ sub: 'specialist-BS Thu Hoi', role: 'specialist', ip: '127.0.0.1' });
    expect(rec.conferenceId).to.equal(CONF);
    expect(rec.target).to.deep.equal({ via: 'signaling', jti: jtiHash(claims.jti) });
    const revocation = records.find((r) => r.type === 'token.revocation');
    expect(revocation?.actor).to.deep.equal({ sub: 'hub', role: 'system' });
    expect(revocation?.target).to.deep.equal({ jti: jtiHash(claims.jti) });
  });

  it('records a refresh: ok with the new exp, and a refused one', async () => {
    const first = token('site', CONF, 'Tram Lam Moi');
    const next = token('site', CONF, 'Tram Lam Moi', 1200);
    const wider = token('site', 'conf-somewhere-else', 'Tram Lam Moi');
    tokens.push(first, next, wider);
    const c = await TestClient.connect(hub.url, first);
    clients.push(c);
    const ok = await c.ok('refreshToken', { token: next });
    const refused = await c.request('refreshToken', { token: wider });
    expect(!refused.ok && refused.error.code).to.equal('forbidden');

    const nextClaims = await hub.auth.verify(next, 'signaling');
    const records = (await allRecords(hub)).filter((r) => r.type === 'token.refreshed' && r.actor.sub === 'site-Tram Lam Moi');
    expect(records.map((r) => [r.outcome, r.target])).to.deep.equal([
      ['ok', { via: 'signaling', jti: jtiHash(nextClaims.jti), exp: ok.exp }],
      ['forbidden', { via: 'signaling', jti: jtiHash(nextClaims.jti) }],
    ]);
  });
});
