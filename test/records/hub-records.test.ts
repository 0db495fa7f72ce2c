import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ReadingBody } from '../../src/devices/reading.js';
import type { Hub } from '../../src/hub/Hub.js';
import type { Bundle } from '../../src/records/fhir.js';
import { PROJECT_ROOT, TestClient, startTestHub, testAuth, token, waitUntil } from '../support/hub.js';
import { UplinkSite } from '../support/uplinkSite.js';
import { TestPostgres } from '../support/postgres.js';
import { IngestSender } from '../../src/devices/video/IngestSender.js';
import { validateBundle } from './fhirCheck.js';

const CONF = 'case-records';

function personToken(role: 'specialist' | 'site', conf: string, name: string, site: string): string {
  return testAuth.sign({ kind: 'person', sub: `${role}-${name}`, name, role, conf, site, ttlSeconds: 600 });
}

async function api(hub: Hub, path: string, bearer: string): Promise<{ status: number; body: any; text: string; type: string | null }> {
  const res = await fetch(`${hub.url}${path}`, { headers: { authorization: `Bearer ${bearer}` } });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text, type: res.headers.get('content-type') };
}

/** The same recorded conference and the same API answers on both engines. */
function recordedHubSuite(engine: 'SQLite' | 'PostgreSQL') {
  describe(`consultation records in a running hub (${engine})`, function () {
    let hub: Hub;
    let sessionId: string;
    let cluster: TestPostgres | undefined;
    // Minted when the suite reaches it, not when mocha loads the file: a 600 s token made at load expires in a long run.
    let engineer: string;
    const t0 = Date.now() - 60_000;

    before(async () => {
      engineer = token('engineer', '*');
      let databaseUrl: string | null = null;
      if (engine === 'PostgreSQL') {
        cluster = await TestPostgres.start();
        databaseUrl = await cluster.createDatabase('hub_records');
      }
      hub = await startTestHub({ records: { databaseUrl, numericIntervalMs: 5000, waveformWindowMs: 1000, waveformEveryMs: 1000 } });
      const specialist = await TestClient.connect(hub.url, personToken('specialist', CONF, 'Dr Lan', 'bv-cho-ray'));
      const site = await TestClient.connect(hub.url, personToken('site', CONF, 'Y ta Hoa', 'tyt-xa-1'));
      await specialist.ok('join', { conferenceId: CONF });
      await site.ok('join', { conferenceId: CONF });
      sessionId = hub.records!.recorder.sessionOf(CONF)!;
      expect(sessionId).to.be.a('string');

      const agent = new UplinkSite(hub.url, 'tyt-xa-1', CONF, [
        {
          deviceId: 'mon-1',
          type: 'vitals',
          model: 'BeneVision N12',
          channels: [
            { code: 'MDC_ECG_HEART_RATE', unit: '/min', kind: 'numeric' },
            { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', kind: 'numeric' },
            { code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', kind: 'waveform' },
          ],
        },
      ]);
      await agent.connect();
      const readings: ReadingBody[] = [];
      // Heart rate every second for 7 s: stored at t0 and t0 + 5 s (records.numericIntervalMs).
      for (let s = 0; s < 7; s++) readings.push({ kind: 'numeric', code: 'MDC_ECG_HEART_RATE', unit: '/min', t: t0 + s * 1000, rt: t0 + s * 1000, value: 70 + s });
      readings.push({ kind: 'numeric', code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', t: t0, rt: t0, value: null });
      // 2.4 s of lead II at 250 Hz in 200 ms readings: two full 1 s strips, the rest too short to keep.
      for (let i = 0; i < 12; i++) {
        const samples = Array.from({ length: 50 }, (_, k) => (i === 3 && k === 7 ? null : Math.round(Math.sin((i * 50 + k) / 10) * 1000) / 1000));
        readings.push({ kind: 'waveform', code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', t: t0 + i * 200, rt: t0 + i * 200, sampleRate: 250, samples });
      }
      const alarm = { kind: 'alarm', code: 'MDC_EVT_LO_VAL_LT_LIM', unit: '', priority: 'high', text: 'SpO2 thấp', alarmId: 'MDC_EVT_LO_VAL_LT_LIM|MDC_PULS_OXIM_SAT_O2|1', source: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', value: 84 } } as const;
      readings.push({ ...alarm, t: t0 + 3000, rt: t0 + 3000, active: true, phase: 'start' });
      readings.push({ ...alarm, t: t0 + 4000, rt: t0 + 4000, active: true, phase: 'continue' });
      readings.push({ ...alarm, t: t0 + 9000, rt: t0 + 9000, active: false, phase: 'end' });
      await agent.send('mon-1', readings);
      hub.records!.recorder.sample();

      await site.ok('leave');
      await specialist.ok('leave');
      specialist.close();
      site.close();
      agent.disconnect();
      await hub.records!.queue.flush();
    });

    after(async () => {
      await hub?.close();
      await cluster?.stop();
    });

    it('records the session, its participants with site and times, the device and its alarm as they happened', async () => {
      const { status, body } = await api(hub, `/api/records/sessions/${sessionId}`, engineer);
      expect(status).to.equal(200);
      expect(body.session).to.include({ id: sessionId, conferenceId: CONF, hubId: hub.records!.hubId, endReason: 'conference_closed' });
      expect(body.session.endedAt).to.be.a('number');
      expect(body.participants.map((p: any) => [p.displayName, p.role, p.siteId])).to.deep.equal([
        ['Dr Lan', 'specialist', 'bv-cho-ray'],
        ['Y ta Hoa', 'site', 'tyt-xa-1'],
      ]);
      for (const p of body.participants) expect(p.leftAt).to.be.at.least(p.joinedAt);
      expect(body.devices).to.have.length(1);
      expect(body.devices[0]).to.include({ deviceId: 'mon-1', siteId: 'tyt-xa-1', model: 'BeneVision N12', protocol: 'hl7-mllp', readings: 23, gaps: 0 });
      expect(body.devices[0].onlineMs).to.be.above(0);
      expect(body.alarms).to.have.length(1);
      expect(body.alarms[0]).to.include({ priority: 'high', text: 'SpO2 thấp', startedAt: t0 + 3000, endedAt: t0 + 9000 });
      const numerics = await hub.records!.store.numerics(sessionId, 100);
      expect(numerics.filter((n) => n.code === 'MDC_ECG_HEART_RATE').map((n) => n.t)).to.deep.equal([t0, t0 + 5000]);
      const strips = await hub.records!.store.waveforms(sessionId, 100);
      expect(strips.map((w) => [w.t, w.samples.length])).to.deep.equal([
        [t0, 250],
        [t0 + 1000, 250],
      ]);
      expect(strips[0]!.samples[157]).to.equal(null);
    });

    it('lists and filters sessions for engineers, pages them, and answers bad parameters with clear JSON errors', async () => {
      const list = await api(hub, `/api/records/sessions?conferenceId=${CONF}`, engineer);
      expect(list.status).to.equal(200);
      expect(list.body.sessions.map((s: any) => s.id)).to.deep.equal([sessionId]);
      expect(list.body.sessions[0]).to.include({ participants: 2, devices: 1, alarms: 1 });
      expect(list.body.sessions[0].sites).to.deep.equal(['bv-cho-ray', 'tyt-xa-1']);
      expect((await api(hub, '/api/records/sessions?siteId=tyt-xa-1', engineer)).body.sessions).to.have.length(1);
      expect((await api(hub, '/api/records/sessions?siteId=elsewhere', engineer)).body.sessions).to.have.length(0);
      const future = new Date(Date.now() + 86_400_000).toISOString();
      expect((await api(hub, `/api/records/sessions?from=${future}`, engineer)).body.sessions).to.have.length(0);
      for (const [query, message] of [
        ['limit=0', 'limit'],
        ['limit=201', 'limit'],
        ['from=yesterday', 'from: must be an ISO 8601 time'],
        ['from=2026-02-01&to=2026-01-01', 'from: must not be after to'],
        ['cursor=bm9wZQ', 'cursor: must be the nextCursor'],
        ['siteId=%3Dcmd', 'siteId: must be a site id'],
        ['colour=red', 'Unrecognized key'],
      ]) {
        const res = await api(hub, `/api/records/sessions?${query}`, engineer);
        expect(res.status, query).to.equal(400);
        expect(res.body.error.code).to.equal('bad_request');
        expect(res.body.error.message, query).to.include(message);
      }
      expect((await api(hub, '/api/records/sessions/not-a-uuid', engineer)).status).to.equal(400);
      expect((await api(hub, '/api/records/sessions/00000000-0000-4000-8000-000000000000', engineer)).status).to.equal(404);
    });

    it('shows specialists only the sessions of their own conference; site staff none', async () => {
      const own = token('specialist', CONF, 'Dr Lan');
      const other = token('specialist', 'another-case', 'Dr Minh');
      expect((await api(hub, '/api/records/sessions', own)).body.sessions.map((s: any) => s.id)).to.deep.equal([sessionId]);
      expect((await api(hub, `/api/records/sessions/${sessionId}`, own)).status).to.equal(200);
      expect((await api(hub, `/api/records/sessions/${sessionId}/fhir`, own)).status).to.equal(200);
      expect((await api(hub, '/api/records/sessions', other)).body.sessions).to.deep.equal([]);
      const asked = await api(hub, `/api/records/sessions?conferenceId=${CONF}`, other);
      expect(asked.status).to.equal(403);
      expect(asked.body.error.code).to.equal('forbidden');
      expect((await api(hub, `/api/records/sessions/${sessionId}`, other)).status).to.equal(404);
      expect((await api(hub, `/api/records/sessions/${sessionId}/fhir`, other)).status).to.equal(404);
      expect((await api(hub, `/api/records/report?month=2026-01&conferenceId=${CONF}`, other)).status).to.equal(403);
      expect((await api(hub, '/api/records/sessions', token('site', CONF))).status).to.equal(403);
      expect((await fetch(`${hub.url}/api/records/sessions`)).status).to.equal(401);
    });

    it('exports CSV with a header row, one row per session', async () => {
      const res = await api(hub, `/api/records/sessions.csv?conferenceId=${CONF}`, engineer);
      expect(res.status).to.equal(200);
      expect(res.type).to.match(/^text\/csv/);
      const lines = res.text.trim().split('\r\n');
      expect(lines[0]).to.equal('session_id,conference_id,hub_id,started_at,ended_at,minutes,participants,devices,alarms,sites,end_reason');
      expect(lines).to.have.length(2);
      expect(lines[1]!.split(',').slice(0, 2)).to.deep.equal([sessionId, CONF]);
      expect(lines[1]).to.include(',2,1,1,bv-cho-ray;tyt-xa-1,conference_closed');
    });

    it('reports the month per site', async () => {
      const month = new Date(t0 + 60_000).toISOString().slice(0, 7);
      const res = await api(hub, `/api/records/report?month=${month}`, engineer);
      expect(res.status).to.equal(200);
      expect(res.body.month).to.equal(month);
      const site = res.body.sites.find((s: any) => s.siteId === 'tyt-xa-1');
      expect(site).to.include({ consultations: 1, sitesJoined: 1, devicesUsed: 1, alarms: 1 });
      expect((await api(hub, '/api/records/report?month=2026-13', engineer)).body.error.message).to.include('month: must be a month, YYYY-MM');
    });

    it('exports the session as a FHIR R4 Bundle that validates, every resource checked', async () => {
      const res = await api(hub, `/api/records/sessions/${sessionId}/fhir`, engineer);
      expect(res.status).to.equal(200);
      expect(res.type).to.match(/^application\/fhir\+json/);
      const bundle = res.body as Bundle;
      expect(bundle).to.include({ resourceType: 'Bundle', type: 'collection' });
      validateBundle(bundle);
      const kinds = bundle.entry.map((e) => e.resource.resourceType);
      expect(kinds.filter((k) => k === 'Encounter')).to.have.length(1);
      expect(kinds.filter((k) => k === 'Device')).to.have.length(1);
      expect(kinds.filter((k) => k === 'DeviceMetric')).to.have.length(3);
      const observations = bundle.entry.map((e) => e.resource as any).filter((r) => r.resourceType === 'Observation');
      const hr = observations.filter((o) => o.code.coding.some((c: any) => c.code === '8867-4'));
      expect(hr).to.have.length(2);
      expect(hr[0].code.coding).to.deep.include({ system: 'urn:iso:std:iso:11073:10101', code: '147842', display: 'MDC_ECG_HEART_RATE' });
      expect(hr[0].valueQuantity).to.deep.equal({ value: 70, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' });
      const spo2 = observations.find((o) => o.code.coding.some((c: any) => c.code === '59408-5'));
      expect(spo2.dataAbsentReason.coding[0].code).to.equal('error');
      const waves = observations.filter((o) => o.valueSampledData);
      expect(waves).to.have.length(2);
      expect(waves[0].valueSampledData).to.include({ period: 4, factor: 0.001, dimensions: 1 });
      expect(waves[0].valueSampledData.data.split(' ')).to.have.length(250);
      expect(waves[0].valueSampledData.data.split(' ')[157]).to.equal('E');
      const alarm = observations.find((o) => o.valueString);
      expect(alarm.effectivePeriod).to.deep.equal({ start: new Date(t0 + 3000).toISOString(), end: new Date(t0 + 9000).toISOString() });
      const encounter = bundle.entry[0]!.resource as any;
      expect(encounter.participant.map((p: any) => p.individual.display)).to.deep.equal(['Dr Lan', 'Y ta Hoa']);
      // The same session gives the same ids (the outbox's PUTs can be repeated).
      const again = (await api(hub, `/api/records/sessions/${sessionId}/fhir?type=transaction`, engineer)).body as Bundle;
      expect(again.type).to.equal('transaction');
      validateBundle(again);
      expect(again.entry.map((e) => e.resource.id)).to.deep.equal(bundle.entry.map((e) => e.resource.id));
      // docs/RECORDS.md's example is this Bundle: HOICHAN_WRITE_EXAMPLES=1 rewrites it.
      if (process.env.HOICHAN_WRITE_EXAMPLES === '1' && engine === 'SQLite') writeFileSync(join(PROJECT_ROOT, 'docs', 'examples', 'records-fhir-bundle.json'), `${JSON.stringify(bundle, null, 2)}\n`);
    });
  });
}

recordedHubSuite('SQLite');
recordedHubSuite('PostgreSQL');

describe('consultation records: network summary from the media stats', function () {
  let hub: Hub;
  let sender: IngestSender | undefined;
  before(async () => {
    hub = await startTestHub({ media: { ingestRequireSrtp: false } });
  });
  after(async () => {
    await sender?.stop();
    await hub?.close();
  });

  it('summarises what a participant sent (bitrate, loss) from the poller, and writes it when it leaves', async () => {
    const conferenceId = 'records-net';
    const viewer = await TestClient.connect(hub.url, token('specialist', conferenceId));
    await viewer.ok('join', { conferenceId });
    sender = new IngestSender({ hubUrl: hub.url, token: token('site', conferenceId), conferenceId, deviceId: 'us-net', displayName: 'Ultrasound', source: 'ultrasound', codec: 'VP8', srtp: false, bitrateKbps: 400 });
    const info = await sender.start();
    const peer = () => hub.conferences.get(conferenceId)!.getPeer(info.ingestId)!;
    // Real RTP from ffmpeg: poll until the producer's stats show it arriving.
    await waitUntil(async () => {
      await hub.telemetry.sample();
      return (hub.telemetry.peerNetwork(peer())?.bitrateIn ?? 0) > 0;
    }, 20_000, 'RTP to reach the ingest producer');
    hub.records!.recorder.sample();
    await hub.telemetry.sample();
    hub.records!.recorder.sample();
    await sender.stop();
    sender = undefined;
    await waitUntil(() => hub.conferences.get(conferenceId)?.getPeer(info.ingestId) === undefined, 20_000, 'the ingest to close');
    viewer.close();
    await hub.records!.queue.flush();
    const sessionId = (await hub.records!.store.listSessions({ conferenceId, limit: 1 }))[0]!.id;
    const detail = (await hub.records!.store.sessionDetail(sessionId))!;
    const ingest = detail.participants.find((p) => p.peerId === info.ingestId)!;
    expect(ingest).to.include({ displayName: 'Ultrasound', role: 'site' });
    expect(ingest.leftAt).to.be.a('number');
    expect(ingest.network.samples).to.be.at.least(2);
    expect(ingest.network.bitrateInAvg).to.be.above(0);
    expect(ingest.network.lossInMax).to.be.at.least(0);
  });
});

describe('consultation records: waveform strips at an alarm', function () {
  let hub: Hub;
  before(async () => {
    // Strips every minute: within these few seconds only the first one, and the one an alarm asks for.
    hub = await startTestHub({ records: { waveformWindowMs: 1000, waveformEveryMs: 60_000 } });
  });
  after(async () => hub?.close());

  it('takes a strip from the readings after an alarm starts, beside the periodic one, and not otherwise', async () => {
    const conferenceId = 'records-strips';
    const viewer = await TestClient.connect(hub.url, token('specialist', conferenceId));
    await viewer.ok('join', { conferenceId });
    const agent = new UplinkSite(hub.url, 'tyt-strips', conferenceId, [{ deviceId: 'ecg-1', type: 'ecg', model: 'ECG', channels: [{ code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', kind: 'waveform' }] }]);
    await agent.connect();
    const t0 = Date.now();
    const wave = (i: number): ReadingBody => ({ kind: 'waveform', code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', t: t0 + i * 200, rt: t0 + i * 200, sampleRate: 250, samples: Array.from({ length: 50 }, (_, k) => k / 100) });
    const readings: ReadingBody[] = [];
    for (let i = 0; i < 10; i++) readings.push(wave(i)); // 0-2 s: the first strip (0-1 s), then nothing due
    readings.push({ kind: 'alarm', code: 'MDC_EVT_ALARM', unit: '', priority: 'medium', text: 'Lead check', alarmId: 'lead', active: true, phase: 'start', t: t0 + 2000, rt: t0 + 2000 });
    for (let i = 10; i < 20; i++) readings.push(wave(i)); // 2-4 s: the alarm's strip (2-3 s)
    await agent.send('ecg-1', readings);
    await viewer.ok('leave');
    viewer.close();
    agent.disconnect();
    await hub.records!.queue.flush();
    const sessionId = (await hub.records!.store.listSessions({ conferenceId, limit: 1 }))[0]!.id;
    expect((await hub.records!.store.waveforms(sessionId, 10)).map((w) => [w.t - t0, w.samples.length])).to.deep.equal([
      [0, 250],
      [2000, 250],
    ]);
    // Still active when the conference closed: no end.
    expect((await hub.records!.store.sessionDetail(sessionId))!.alarms.map((a) => [a.priority, a.endedAt])).to.deep.equal([['medium', null]]);
  });
});
