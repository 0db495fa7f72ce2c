import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditRecord } from '../../src/audit/events.js';
import { listDayFiles, verifyAuditDir } from '../../src/audit/files.js';
import type { Hub } from '../../src/hub/Hub.js';
import { siteToken } from '../agent/uplink-helpers.js';
import { PROJECT_ROOT, TestClient, joinWithTransports, startTestHub, token } from '../support/hub.js';

// A real hub records who did what, with ids, roles, addresses and outcomes only:
// the audit files never hold a token, a reading value or a name typed by a user.

const CONF = 'conf-audit';
const OTHER = 'conf-audit-other';
/** A value no id, time or hash in the file can contain by chance. */
const READING_VALUE = 187.123456;
const PATIENT_NAME = 'BN Tran Thi Bay';

async function allRecords(hub: Hub): Promise<AuditRecord[]> {
  await hub.audit!.flush();
  return (await listDayFiles(hub.audit!.dir)).flatMap((f) => readFileSync(f.path, 'utf8').split('\n').filter(Boolean)).map((l) => JSON.parse(l) as AuditRecord);
}

async function auditText(hub: Hub): Promise<string> {
  await hub.audit!.flush();
  return (await listDayFiles(hub.audit!.dir)).map((f) => readFileSync(f.path, 'utf8')).join('');
}

describe('audit log of a real hub', function () {
  this.timeout(60_000);
  let hub: Hub;
  const clients: TestClient[] = [];
  const tokens: string[] = [];
  const tok = (...args: Parameters<typeof token>) => {
    const t = token(...args);
    tokens.push(t);
    return t;
  };
  const api = (path: string, auth: string, init: RequestInit = {}) =>
    fetch(`${hub.url}${path}`, { ...init, headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json', ...init.headers } });

  before(async () => {
    hub = await startTestHub();
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  after(() => hub?.close());

  it('records a join and a leave, with the device streams and the media the peer received', async () => {
    // A site agent attaches a monitor to the conference and sends one reading.
    const agentToken = siteToken('site-audit', CONF);
    tokens.push(agentToken);
    const agent = await TestClient.connect(`${hub.url}/uplink`, agentToken);
    clients.push(agent);
    const device = { deviceId: 'mon-audit-1', conferenceId: CONF, type: 'vitals', model: 'test', protocol: 'hl7-mllp', status: 'online', channels: [], acked: 0, lastSeq: 0 };
    await agent.ok('hello', { version: 1, siteId: 'site-audit', clock: { offsetMs: 0, rttMs: 1 }, devices: [device] });
    const t = Date.now();
    await agent.ok('batch', { deviceId: 'mon-audit-1', from: 1, to: 1, readings: [{ deviceId: 'mon-audit-1', seq: 1, kind: 'numeric', code: 'MDC_ECG_HEART_RATE', unit: '/min', t, rt: t, value: READING_VALUE }] });

    // An ultrasound ingest, named after the patient by the site.
    const siteHttp = tok('site', CONF, 'Tram Y te');
    const created = await api(`/api/conferences/${CONF}/ingests`, siteHttp, { method: 'POST', body: JSON.stringify({ deviceId: 'us-audit', displayName: `Sieu am ${PATIENT_NAME}` }) });
    expect(created.status).to.equal(201);
    const ingest = (await created.json()) as { ingestId: string };

    const specialistToken = tok('specialist', CONF, 'Dr Lan');
    const specialist = await TestClient.connect(hub.url, specialistToken);
    clients.push(specialist);
    const { joined, recv } = await joinWithTransports(specialist, CONF, `Dr Lan for ${PATIENT_NAME}`);
    const peerId = joined.peerId as string;
    await specialist.waitFor('deviceReadings', (d) => d.deviceId === 'mon-audit-1');
    const producer = (joined.producers as Array<{ producerId: string; peerId: string; source: string }>).find((p) => p.source === 'ultrasound')!;
    await specialist.ok('consume', { transportId: recv, producerId: producer.producerId, rtpCapabilities: joined.routerRtpCapabilities });
    await specialist.ok('leave');
    expect((await api(`/api/conferences/${CONF}/ingests/${ingest.ingestId}`, siteHttp, { method: 'DELETE' })).status).to.equal(204);

    const records = await allRecords(hub);
    const sub = 'specialist-Dr Lan';
    const find = (type: string, extra: (r: AuditRecord) => boolean = () => true) => records.find((r) => r.type === type && extra(r));
    expect(find('device.attach')).to.deep.include({ actor: { sub: 'site-audit', role: 'agent', ip: '127.0.0.1' }, conferenceId: CONF, outcome: 'ok', target: { deviceId: 'mon-audit-1' } });
    expect(find('ingest.create')).to.deep.include({ conferenceId: CONF, outcome: 'ok', target: { deviceId: 'us-audit', ingestId: ingest.ingestId, source: 'ultrasound', srtp: true } });
    expect(find('conference.join', (r) => r.actor.sub === sub)).to.deep.include({ actor: { sub, role: 'specialist', ip: '127.0.0.1' }, conferenceId: CONF, outcome: 'ok', target: { peerId } });
    expect(find('device.replay')).to.deep.include({ actor: { sub, role: 'specialist', ip: '127.0.0.1' }, conferenceId: CONF, target: { peerId, deviceId: 'mon-audit-1', resumed: false } });
    expect(find('media.consume')).to.deep.include({
      conferenceId: CONF,
      target: { peerId, producerId: producer.producerId, producerPeerId: ingest.ingestId, source: 'ultrasound', kind: 'video' },
    });
    expect(find('conference.leave')).to.deep.include({ conferenceId: CONF, target: { peerId, reason: 'leave' } });
    expect(find('ingest.delete')).to.deep.include({ outcome: 'ok', target: { ingestId: ingest.ingestId } });
    // In the order they happened.
    const order = ['device.attach', 'ingest.create', 'conference.join', 'device.replay', 'media.consume', 'conference.leave', 'ingest.delete'].map((type) => find(type)!.seq);
    expect(order).to.deep.equal([...order].sort((a, b) => a - b));
  });

  it('records a refused token, a forbidden conference, and engineer API use; GET /api/audit is for engineers only', async () => {
    const badToken = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJlLWZha2U';
    tokens.push(badToken);
    let refused: Error | undefined;
    await TestClient.connect(hub.url, badToken).catch((err: Error) => (refused = err));
    expect(refused?.message).to.equal('unauthorized');

    const site = await TestClient.connect(hub.url, tok('site', CONF, 'Tram Y te'));
    clients.push(site);
    const reply = await site.request('join', { conferenceId: OTHER, displayName: 'x' });
    expect(reply.ok).to.equal(false);

    const engineer = tok('engineer', '*', 'Ops');
    const ops = await api('/api/ops', engineer);
    expect(ops.status).to.equal(200);
    await ops.json();
    const specialist = tok('specialist', CONF, 'Dr Lan');
    const forbidden = await api('/api/audit', specialist);
    expect(forbidden.status).to.equal(403);
    expect(await forbidden.json()).to.deep.equal({ error: { code: 'forbidden', message: 'requires role engineer' } });
    expect((await api('/api/audit', 'not-a-token')).status).to.equal(401);

    const res = await api(`/api/audit?type=auth&limit=5`, engineer);
    expect(res.status).to.equal(200);
    const body = (await res.json()) as { records: AuditRecord[]; chain: { ok: boolean; fromSeq: number; toSeq: number } };
    expect(body.chain.ok).to.equal(true);
    expect(body.records.map((r) => r.target?.via)).to.deep.equal(['http', 'signaling']);
    expect(body.records[1]).to.deep.include({ actor: { sub: null, role: null, ip: '127.0.0.1' }, outcome: 'unauthorized', target: { via: 'signaling', reason: 'invalid' } });
    expect(body.records[0]!.target).to.deep.include({ route: '/api/audit', reason: 'invalid' });

    const joins = (await (await api(`/api/audit?conferenceId=${OTHER}`, engineer)).json()) as { records: AuditRecord[] };
    expect(joins.records).to.have.length(1);
    expect(joins.records[0]).to.deep.include({ type: 'conference.join', actor: { sub: 'site-Tram Y te', role: 'site', ip: '127.0.0.1' }, outcome: 'forbidden' });

    const engineerUse = (await (await api(`/api/audit?actor=engineer-Ops&type=engineer.api`, engineer)).json()) as { records: AuditRecord[] };
    // Newest first: the two queries above, then /api/ops (each call is recorded when its response is sent).
    expect(engineerUse.records.map((r) => r.target?.route)).to.deep.equal(['/api/audit', '/api/audit', '/api/ops']);
    expect(engineerUse.records[2]).to.deep.include({ outcome: 'ok', target: { method: 'GET', route: '/api/ops', status: 200 } });
    const forbiddenUse = (await (await api(`/api/audit?type=http.forbidden`, engineer)).json()) as { records: AuditRecord[] };
    expect(forbiddenUse.records[0]).to.deep.include({ actor: { sub: 'specialist-Dr Lan', role: 'specialist', ip: '127.0.0.1' }, target: { method: 'GET', route: '/api/audit' } });

    // Bounded and validated.
    expect((await api('/api/audit?limit=1001', engineer)).status).to.equal(400);
    expect((await api('/api/audit?from=yesterday', engineer)).status).to.equal(400);
    expect((await api('/api/audit?colour=red', engineer)).status).to.equal(400);
    expect((await api('/api/audit?type=a&type=b', engineer)).status).to.equal(400);
    const page = (await (await api('/api/audit?limit=2', engineer)).json()) as { records: AuditRecord[]; more: boolean };
    expect(page.more).to.equal(true);
    const next = (await (await api(`/api/audit?limit=2&beforeSeq=${page.records[1]!.seq}`, engineer)).json()) as { records: AuditRecord[] };
    expect(next.records.map((r) => r.seq)).to.deep.equal([page.records[1]!.seq - 1, page.records[1]!.seq - 2]);
    const before = hub.audit!.head.seq;
    const head = (await (await api('/api/audit/head', engineer)).json()) as { seq: number; hash: string };
    expect(head.hash).to.match(/^[0-9a-f]{64}$/);
    expect(head.seq).to.be.within(before, hub.audit!.head.seq);
  });

  it('the files hold no token, reading value or patient name, and the chain verifies with the CLI', async () => {
    const text = await auditText(hub);
    expect(tokens.length).to.be.greaterThan(3);
    for (const t of tokens) {
      expect(text).not.to.include(t);
      expect(text).not.to.include(t.split('.')[2]!);
    }
    expect(text).not.to.include(String(READING_VALUE));
    expect(text).not.to.include(PATIENT_NAME);
    expect(text).not.to.include('Dr Lan for');
    expect((await verifyAuditDir(hub.audit!.dir)).ok).to.equal(true);
    const cli = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'hoichan.js'), 'audit', 'verify', '--dir', hub.audit!.dir], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOICHAN_LOG_LEVEL: 'silent' } });
    expect(cli.status, cli.stdout + cli.stderr).to.equal(0);
  });
});
