// Bad input on the uplink, from a raw socket.io client: each gets a clear
// error reply, nothing of the bad batch is stored or shown to viewers, and
// the connection lives on.

import type { Hub } from '../../src/hub/Hub.js';
import { TestClient, startTestHub, token } from '../support/hub.js';
import { Viewer, expect, siteToken, sleep, waitFor } from './uplink-helpers.js';

const CONF = 'conf-bad';

function device(deviceId: string, conferenceId = CONF) {
  return { deviceId, conferenceId, type: 'vitals', model: 'test', protocol: 'hl7-mllp', status: 'online', channels: [], acked: 0, lastSeq: 0 };
}

function hello(siteId: string, devices: unknown[]) {
  return { version: 1, siteId, clock: { offsetMs: 0, rttMs: 1 }, devices };
}

function numeric(deviceId: string, seq: number, value = 70 + seq) {
  const t = Date.now();
  return { deviceId, seq, kind: 'numeric', code: 'MDC_ECG_HEART_RATE', unit: '/min', t, rt: t, value };
}

function batch(deviceId: string, seqs: number[]) {
  return { deviceId, from: seqs[0], to: seqs[seqs.length - 1], readings: seqs.map((s) => numeric(deviceId, s)) };
}

describe('uplink: bad input', function () {
  this.timeout(30_000);
  let hub: Hub;
  let viewer: Viewer;
  const clients: TestClient[] = [];

  before(async () => {
    hub = await startTestHub();
    viewer = await Viewer.join(hub.url, CONF);
  });
  after(async () => {
    viewer.close();
    for (const c of clients) c.close();
    await hub.close();
  });

  async function agent(siteId: string, conf = CONF): Promise<TestClient> {
    const client = await TestClient.connect(`${hub.url}/uplink`, siteToken(siteId, conf));
    clients.push(client);
    return client;
  }

  const stored = (deviceId: string) => hub.streams!.stats().find((s) => s.deviceId === deviceId)?.stored ?? 0;

  it('refuses a handshake without a site token', async () => {
    for (const t of [undefined, token('specialist', CONF), 'not-a-jwt']) {
      const err = await TestClient.connect(`${hub.url}/uplink`, t).then(
        (c) => (c.close(), undefined),
        (e: Error) => e,
      );
      expect(err?.message).to.equal('unauthorized');
    }
  });

  it('wrong site, another site\u2019s device, a conference the token does not grant: refused, nothing stored', async () => {
    const a = await agent('site-a');
    expect(await a.request('batch', batch('dev-a', [1]))).to.deep.include({ ok: false, error: { code: 'bad_request', message: 'send hello first' } });

    const wrongSite = await a.request('hello', hello('site-b', [device('dev-a')]));
    expect(wrongSite).to.deep.include({ ok: false });
    expect((wrongSite as any).error).to.include({ code: 'forbidden' });
    expect((wrongSite as any).error.message).to.match(/token is for site site-a, not site-b/);

    const ok = await a.ok('hello', hello('site-a', [device('dev-a'), device('dev-other-conf', 'conf-elsewhere')]));
    expect(ok.devices).to.deep.equal([{ deviceId: 'dev-a', acked: 0 }]);
    expect(ok.rejected).to.have.length(1);
    expect(ok.rejected[0]).to.include({ deviceId: 'dev-other-conf', code: 'forbidden' });
    expect(ok.rejected[0].message).to.match(/conference conf-elsewhere, which this agent token does not grant/);
    const otherConf = await a.request('batch', batch('dev-other-conf', [1]));
    expect((otherConf as any).error.code).to.equal('not_found');

    const b = await agent('site-b');
    const bHello = await b.ok('hello', hello('site-b', [device('dev-a'), device('dev-b')]));
    expect(bHello.devices).to.deep.equal([{ deviceId: 'dev-b', acked: 0 }]);
    expect(bHello.rejected[0]).to.include({ deviceId: 'dev-a', code: 'forbidden' });
    const stolen = await b.request('batch', batch('dev-a', [1, 2]));
    expect((stolen as any).error).to.deep.equal({ code: 'forbidden', message: 'device dev-a belongs to another site' });
    expect(stored('dev-a')).to.equal(0);

    // Both connections still work.
    expect(await a.ok('batch', batch('dev-a', [1]))).to.include({ acked: 1 });
    expect(await b.ok('batch', batch('dev-b', [1]))).to.include({ acked: 1 });
  });

  it('malformed batches and seqs going backwards: clear errors, nothing stored, the connection lives', async () => {
    const c = await agent('site-c');
    await c.ok('hello', hello('site-c', [device('dev-c')]));
    expect(await c.ok('batch', batch('dev-c', [1, 2, 3]))).to.include({ acked: 3 });

    const base = batch('dev-c', [4, 5]);
    const bad: Array<[string, unknown, RegExp]> = [
      ['not an object', 'junk', /batch: payload: Expected object/],
      ['no readings', { deviceId: 'dev-c', from: 4, to: 5 }, /readings: Required/],
      ['unknown kind', { ...base, readings: [{ ...base.readings[0], kind: 'vibes' }, base.readings[1]] }, /readings\.0\.kind: Invalid discriminator/],
      ['value not a number', { ...base, readings: [{ ...base.readings[0], value: '72' }, base.readings[1]] }, /readings\.0\.value: Expected number/],
      ['reading of another device', { ...base, readings: [base.readings[0], { ...base.readings[1], deviceId: 'dev-a' }] }, /reading seq 5 is of device dev-a, not dev-c/],
      ['seq backwards inside', { ...base, readings: [base.readings[1], base.readings[0]] }, /seq goes backwards inside the batch: 4 after 5/],
      ['a hole without a gap', { ...batch('dev-c', [4, 6]), from: 4, to: 6 }, /seqs 5\.\.5 are neither readings nor a gap/],
      ['to below from', { ...base, from: 5, to: 4 }, /to \(4\) is below from \(5\)/],
      ['too many readings', batch('dev-c', Array.from({ length: 1001 }, (_, i) => 4 + i)), /readings: Array must contain at most 1000/],
      ['seq 0', { ...base, from: 0, readings: [{ ...base.readings[0], seq: 0 }, base.readings[1]] }, /from: Number must be greater than or equal to 1/],
    ];
    for (const [what, payload, message] of bad) {
      const reply = await c.request('batch', payload);
      expect(reply.ok, what).to.equal(false);
      expect((reply as any).error.code, what).to.equal('bad_request');
      expect((reply as any).error.message, what).to.match(message);
    }
    const backwards = await c.request('batch', batch('dev-c', [2, 3, 4]));
    expect((backwards as any).error).to.deep.equal({ code: 'bad_request', message: 'seq goes backwards: batch 2..4 after one that ended at 3 on this connection' });
    const gap = await c.request('batch', batch('dev-c', [8, 9]));
    expect((gap as any).error).to.deep.equal({ code: 'conflict', message: 'seq gap: the hub has dev-c up to 3, the batch starts at 8; resend from 4' });
    const unknown = await c.request('upload', {});
    expect((unknown as any).error).to.deep.equal({ code: 'bad_request', message: "unknown uplink message 'upload'" });
    expect(stored('dev-c')).to.equal(3);

    // Still connected and working: the next good batch is stored and shown.
    expect(await c.ok('batch', batch('dev-c', [4, 5]))).to.include({ acked: 5 });
    await waitFor(() => viewer.lastSeq('dev-c') === 5, 5000, 'dev-c up to 5');
    await sleep(200);
    expect(viewer.readings.get('dev-c')!.map((r) => r.seq)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(viewer.readings.get('dev-c')!.map((r: any) => r.value)).to.deep.equal([71, 72, 73, 74, 75]);
    expect(viewer.problems).to.deep.equal([]);

    // A reconnecting agent resends from its ack: duplicates are dropped, acked, and not shown again.
    c.close();
    const again = await agent('site-c');
    const resumed = await again.ok('hello', hello('site-c', [{ ...device('dev-c'), acked: 3, lastSeq: 6 }]));
    expect(resumed.devices).to.deep.equal([{ deviceId: 'dev-c', acked: 5 }]);
    expect(await again.ok('batch', batch('dev-c', [4, 5, 6]))).to.include({ acked: 6 });
    await waitFor(() => viewer.lastSeq('dev-c') === 6, 5000, 'dev-c 6');
    expect(viewer.readings.get('dev-c')!.map((r) => r.seq)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    expect(hub.streams!.stats().find((s) => s.deviceId === 'dev-c')!.duplicatesDropped).to.equal(2);
  });

  it('an alarm behind its device\u2019s backlog is shown at once as deviceAlarm, then delivered in seq order', async () => {
    const d = await agent('site-d');
    await d.ok('hello', hello('site-d', [device('dev-d')]));
    const t = Date.now();
    const alarm = { deviceId: 'dev-d', seq: 500, kind: 'alarm', code: 'MDC_EVT_ECG_TACHY', unit: '', t, rt: t, priority: 'high', text: 'Tachycardia', active: true };
    expect(await d.ok('alarm', { deviceId: 'dev-d', reading: alarm })).to.deep.equal({ ok: true });
    await waitFor(() => viewer.alarms.some((a) => a.deviceId === 'dev-d'), 5000, 'deviceAlarm');
    expect(viewer.alarms.find((a) => a.deviceId === 'dev-d').reading).to.deep.equal(alarm);
    expect(viewer.count('dev-d')).to.equal(0);
    const bad = await d.request('alarm', { deviceId: 'dev-d', reading: { ...alarm, priority: 'urgent' } });
    expect((bad as any).error.code).to.equal('bad_request');
    expect(stored('dev-d')).to.equal(0);
    // The backlog then arrives, the alarm in its place.
    const backlog = batch('dev-d', Array.from({ length: 499 }, (_, i) => i + 1));
    expect(await d.ok('batch', { ...backlog, to: 500, readings: [...backlog.readings, alarm] })).to.include({ acked: 500 });
    await waitFor(() => viewer.lastSeq('dev-d') === 500, 5000, 'dev-d backlog');
    expect(viewer.readings.get('dev-d')![499]).to.deep.equal(alarm);
    expect(viewer.alarms.filter((a) => a.deviceId === 'dev-d')).to.have.length(1);
  });
});
