// Patient isolation (issue 10): a monitor streamed into conference X, ending
// with a VF alarm, is reassigned to conference Y (the agent restarts with the
// new config and says hello again, with readings journaled under X still
// unsent). Y's specialist must get nothing of X: not in the join snapshot,
// not when resuming with auth.deviceSeqs, not live from X's in-flight batches;
// X's viewers are told the device left. Run on the memory store and on Redis.

import { io, type Socket } from 'socket.io-client';
import type { Reading } from '../../src/devices/reading.js';
import { Viewer, expect, siteToken, waitFor } from '../agent/uplink-helpers.js';
import { TestClient, startTestHub, token } from '../support/hub.js';
import { TestRedis } from '../support/redis.js';

const SITE = 'site-iso';
const DEV = 'mon-iso';

function device(conferenceId: string, acked: number, lastSeq: number) {
  return { deviceId: DEV, conferenceId, type: 'vitals', model: 'm', protocol: 'hl7-mllp', status: 'online', channels: [], acked, lastSeq };
}
const hello = (conferenceId: string, acked: number, lastSeq: number) => ({ version: 1, siteId: SITE, clock: { offsetMs: 0, rttMs: 1 }, devices: [device(conferenceId, acked, lastSeq)] });

/** seqs from..to: a heart rate, a waveform, and at `alarmAt` the given alarm. */
function readings(from: number, to: number, alarm?: { at: number; text: string }): Reading[] {
  const t = Date.now();
  const out: Reading[] = [];
  for (let seq = from; seq <= to; seq++) {
    const base = { deviceId: DEV, seq, t: t + seq, rt: t + seq };
    if (alarm?.at === seq) out.push({ ...base, kind: 'alarm', code: 'MDC_EVT_ECG_V_FIB', unit: '', priority: 'high', text: alarm.text, active: true });
    else if (seq % 2 === 0) out.push({ ...base, kind: 'numeric', code: 'MDC_ECG_HEART_RATE', unit: '/min', value: 60 + seq });
    else out.push({ ...base, kind: 'waveform', code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', sampleRate: 250, samples: [seq, seq + 0.5, null] });
  }
  return out;
}
const batch = (rs: Reading[]) => ({ deviceId: DEV, from: rs[0]!.seq, to: rs[rs.length - 1]!.seq, readings: rs });

/** A specialist that joins presenting auth.deviceSeqs of its own choosing (as a resuming browser does). */
async function joinResuming(url: string, conferenceId: string, deviceSeqs: Record<string, number>): Promise<{ socket: Socket; readings: Reading[]; devices: any[] }> {
  const socket = io(url, { auth: { token: token('specialist', conferenceId, 'resumer'), deviceSeqs }, transports: ['websocket'], forceNew: true, reconnection: false });
  const got: Reading[] = [];
  socket.on('deviceReadings', (data: { readings: Reading[] }) => got.push(...data.readings));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  const reply = await socket.emitWithAck('join', { conferenceId, displayName: 'Resumer' });
  if (!reply.ok) throw new Error(`join: ${reply.error.message}`);
  return { socket, readings: got, devices: reply.devices };
}

describe('patient isolation: a device reassigned to another conference', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  before(async () => {
    redis = await TestRedis.start();
  });
  after(async () => {
    await redis.stop();
  });

  for (const store of ['memory', 'redis'] as const) {
    it(`${store}: Y gets nothing of X on join, on resume or live; X is told the device left`, async () => {
      const X = `conf-x-${store}`;
      const Y = `conf-y-${store}`;
      const hub = await startTestHub(store === 'redis' ? { redis: { url: redis.url } } : {});
      const closers: Array<() => unknown> = [() => hub.close()];
      try {
        const viewerX = await Viewer.join(hub.url, X, { resume: false });
        closers.push(() => viewerX.close());
        // In X: ten readings, the last a VF alarm; seqs 11..15 are journaled under X but not yet sent.
        let agent = await TestClient.connect(`${hub.url}/uplink`, siteToken(SITE, [X, Y]));
        closers.push(() => agent.close());
        await agent.ok('hello', hello(X, 0, 0));
        expect((await agent.ok('batch', batch(readings(1, 10, { at: 10, text: 'VF' })))).acked).to.equal(10);
        await waitFor(() => viewerX.lastSeq(DEV) === 10, 5000, 'X viewer gets X readings');

        // Reassigned: the agent restarts with conference Y and says hello with its journal as it is.
        agent.close();
        agent = await TestClient.connect(`${hub.url}/uplink`, siteToken(SITE, [X, Y]));
        closers.push(() => agent.close());
        expect((await agent.ok('hello', hello(Y, 10, 15))).devices).to.deep.equal([{ deviceId: DEV, acked: 10 }]);
        await waitFor(() => viewerX.statuses.some((s) => s.deviceId === DEV && s.conferenceId === X && s.reason === 'device moved to another conference'), 5000, 'X told the device left');

        // Y's specialist joins: the device is listed in Y, and its snapshot holds nothing of X.
        const viewerY = await Viewer.join(hub.url, Y, { resume: false });
        closers.push(() => viewerY.close());
        expect(viewerY.devicesAtJoin.map((d) => [d.deviceId, d.conferenceId])).to.deep.equal([[DEV, Y]]);
        // X's in-flight readings arrive now, one an ASYSTOLE alarm, also sent ahead as an alarm notice:
        // acked (the journal's seqs stay contiguous), never shown in Y.
        const inFlight = readings(11, 15, { at: 14, text: 'ASYSTOLE' });
        expect((await agent.ok('alarm', { deviceId: DEV, reading: inFlight[3] })).ok).to.equal(true);
        expect((await agent.ok('batch', batch(inFlight))).acked).to.equal(15);
        // Y's own readings: the first thing Y sees (live events follow the replay, so this is a sync point).
        expect((await agent.ok('batch', batch(readings(16, 18)))).acked).to.equal(18);
        await waitFor(() => viewerY.lastSeq(DEV) === 18, 5000, 'Y viewer gets Y readings');
        expect(viewerY.readings.get(DEV)!.map((r) => r.seq)).to.deep.equal([16, 17, 18]);
        expect(viewerY.alarms).to.deep.equal([]);
        expect(viewerY.problems).to.deep.equal([]);

        // Resuming in Y with seqs from before Y's session (X's, or invented): only Y's readings come back.
        for (const after of [0, 3, 9, 14]) {
          const resumer = await joinResuming(hub.url, Y, { [DEV]: after });
          closers.push(() => resumer.socket.close());
          await waitFor(() => resumer.readings.length >= 3, 5000, `resume after ${after}`);
          expect(resumer.readings.map((r) => r.seq), `resume after ${after}`).to.deep.equal([16, 17, 18]);
          resumer.socket.close();
        }
        // A late joiner of Y on the snapshot path (recent waveforms, latest value per code): Y's readings only.
        const lateY = await joinResuming(hub.url, Y, {});
        closers.push(() => lateY.socket.close());
        await waitFor(() => lateY.readings.length >= 2, 5000, 'Y snapshot');
        expect(lateY.readings.map((r) => r.seq)).to.deep.equal([17, 18]);
        expect(lateY.readings.some((r) => r.kind === 'alarm')).to.equal(false);

        // X no longer lists the device, and X's viewer got nothing after the move.
        const lateX = await joinResuming(hub.url, X, {});
        closers.push(() => lateX.socket.close());
        expect(lateX.devices).to.deep.equal([]);
        expect(viewerX.lastSeq(DEV)).to.equal(10);
      } finally {
        for (const close of closers.reverse()) await close();
      }
    });
  }

  it('a device that comes back to the same conference keeps its session and history', async () => {
    const hub = await startTestHub();
    const agent = await TestClient.connect(`${hub.url}/uplink`, siteToken(SITE, 'conf-same'));
    try {
      await agent.ok('hello', hello('conf-same', 0, 0));
      await agent.ok('batch', batch(readings(1, 6)));
      agent.close();
      const again = await TestClient.connect(`${hub.url}/uplink`, siteToken(SITE, 'conf-same'));
      try {
        // Restarted with readings 7..8 journaled: same conference, so they are this session's.
        expect((await again.ok('hello', hello('conf-same', 6, 8))).devices).to.deep.equal([{ deviceId: DEV, acked: 6 }]);
        await again.ok('batch', batch(readings(7, 8)));
        const viewer = await joinResuming(hub.url, 'conf-same', { [DEV]: 0 });
        await waitFor(() => viewer.readings.length >= 8, 5000, 'resume of the whole session');
        expect(viewer.readings.map((r) => r.seq)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
        viewer.socket.close();
      } finally {
        again.close();
      }
    } finally {
      agent.close();
      await hub.close();
    }
  });
});
