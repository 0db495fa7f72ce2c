// The device history store: the same behaviour in memory and on Redis
// Streams, and a hub on Redis keeps watermarks and history across a restart.

import type { DeviceHistoryStore } from '../../src/cluster/deviceHistory.js';
import { MemoryDeviceHistory } from '../../src/cluster/memoryDeviceHistory.js';
import { RedisDeviceHistory } from '../../src/cluster/redisDeviceHistory.js';
import type { Reading } from '../../src/devices/reading.js';
import { startTestHub, TestClient } from '../support/hub.js';
import { Viewer, expect, siteToken, waitFor } from '../agent/uplink-helpers.js';
import { TestRedis } from './redis-helpers.js';

const T0 = 1_700_000_000_000;

function waveform(seq: number, t: number): Reading {
  return { deviceId: 'd1', seq, kind: 'waveform', code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', t, rt: t, sampleRate: 250, samples: [seq, seq + 0.5] };
}
function numeric(seq: number, t: number, code = 'MDC_ECG_HEART_RATE'): Reading {
  return { deviceId: 'd1', seq, kind: 'numeric', code, unit: '/min', t, rt: t, value: seq };
}

describe('device history store', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  before(async () => {
    redis = await TestRedis.start();
  });
  after(async () => {
    await redis.stop();
  });

  const stores: Array<[string, () => Promise<DeviceHistoryStore>]> = [
    ['memory', async () => new MemoryDeviceHistory({ maxReadings: 1000 })],
    ['redis', async () => RedisDeviceHistory.connect(redis.url, { maxReadings: 1000 })],
  ];

  for (const [kind, make] of stores) {
    describe(kind, () => {
      it('claims, watermarks, ranges and snapshots', async () => {
        const store = await make();
        try {
          const id = `d1-${kind}-${Date.now()}`;
          const r = (x: Reading) => ({ ...x, deviceId: id });
          expect(await store.claim(id, 'site-a')).to.equal('site-a');
          expect(await store.claim(id, 'site-b')).to.equal('site-a');
          expect(await store.watermark(id)).to.equal(0);
          // 120 s of device time: a waveform each second, an HR every 10 s, a temperature once.
          const readings: Reading[] = [];
          for (let s = 1; s <= 120; s++) readings.push(r(waveform(readings.length + 1, T0 + s * 1000)));
          readings.splice(5, 0, r(numeric(0, T0 + 5000, 'MDC_TEMP')));
          for (let s = 10; s <= 120; s += 10) readings.push(r(numeric(0, T0 + s * 1000)));
          readings.sort((a, b) => a.t - b.t || a.kind.localeCompare(b.kind));
          readings.forEach((x, i) => (x.seq = i + 1));
          await store.append(id, readings.slice(0, 50), 50);
          await store.append(id, readings.slice(50), readings.length + 3); // a gap after the last reading
          expect(await store.watermark(id)).to.equal(readings.length + 3);
          expect((await store.range(id, 10, 20, 100)).map((x) => x.seq)).to.deep.equal([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
          expect((await store.range(id, 10, 200, 3)).map((x) => x.seq)).to.deep.equal([11, 12, 13]);
          expect(await store.range(id, 0, 200, 1000)).to.deep.equal(readings);
          const snapshot = await store.recent(id, 60_000, Number.MAX_SAFE_INTEGER);
          const waves = snapshot.filter((x) => x.kind === 'waveform');
          expect(waves.map((x) => x.t)).to.deep.equal(Array.from({ length: 61 }, (_, i) => T0 + (60 + i) * 1000));
          const others = snapshot.filter((x) => x.kind !== 'waveform').map((x) => `${x.code}@${x.t}`);
          expect(others).to.deep.equal([`MDC_TEMP@${T0 + 5000}`, `MDC_ECG_HEART_RATE@${T0 + 120_000}`]);
          expect(snapshot.map((x) => x.seq)).to.deep.equal([...snapshot.map((x) => x.seq)].sort((a, b) => a - b));
          // Up to a watermark: nothing newer.
          const upTo = readings[30]!.seq;
          expect((await store.recent(id, 60_000, upTo)).every((x) => x.seq <= upTo)).to.equal(true);
          await store.resetWatermark(id, 7);
          expect(await store.watermark(id)).to.equal(7);
        } finally {
          await store.close();
        }
      });

      it('snapshots the latest reading of each alarm identity, ended ones as ended', async () => {
        const store = await make();
        try {
          const id = `d2-${kind}-${Date.now()}`;
          const alarm = (seq: number, alarmId: string, active: boolean, phase: string): Reading => ({
            deviceId: id,
            seq,
            kind: 'alarm',
            code: 'MDC_EVT_LO_VAL_LT_LIM',
            unit: '',
            t: T0 + seq * 1000,
            rt: T0 + seq * 1000,
            priority: 'medium',
            text: alarmId,
            active,
            phase,
            alarmId,
          });
          // SpO2-low and HR-low share their event code; SpO2-low ends, HR-low goes on.
          await store.append(id, [alarm(1, 'spo2-low', true, 'start'), alarm(2, 'hr-low', true, 'start'), alarm(3, 'spo2-low', false, 'end'), alarm(4, 'hr-low', true, 'continue')], 4);
          const snapshot = await store.recent(id, 60_000, Number.MAX_SAFE_INTEGER);
          expect(snapshot.map((x) => x.kind === 'alarm' && `${x.alarmId}:${x.phase}`)).to.deep.equal(['spo2-low:end', 'hr-low:continue']);
        } finally {
          await store.close();
        }
      });
    });
  }

  it('a hub on Redis keeps the watermark and the history across a restart', async () => {
    const port = (await import('../agent/uplink-helpers.js')).freePort;
    const httpPort = await port();
    let hub = await startTestHub({ http: { port: httpPort }, redis: { url: redis.url } });
    try {
      expect(hub.streams!.storeKind).to.equal('redis');
      const hello = { version: 1, siteId: 'site-r', clock: { offsetMs: 0, rttMs: 1 }, devices: [{ deviceId: 'dev-r', conferenceId: 'conf-r', type: 'vitals', model: 'm', protocol: 'opcua', status: 'online', channels: [], acked: 0, lastSeq: 10 }] };
      const t = Date.now();
      const readings = Array.from({ length: 10 }, (_, i) => ({ deviceId: 'dev-r', seq: i + 1, kind: 'numeric', code: 'MDC_TEMP', unit: 'Cel', t: t + i, rt: t + i, value: 36 + i / 10 }));
      let agent = await TestClient.connect(`${hub.url}/uplink`, siteToken('site-r', 'conf-r'));
      await agent.ok('hello', hello);
      expect(await agent.ok('batch', { deviceId: 'dev-r', from: 1, to: 10, readings })).to.include({ acked: 10 });
      agent.close();
      await hub.close();

      hub = await startTestHub({ http: { port: httpPort }, redis: { url: redis.url } });
      agent = await TestClient.connect(`${hub.url}/uplink`, siteToken('site-r', 'conf-r'));
      // The agent never got its last ack (acked 0): the hub still knows it has 10.
      const again = await agent.ok('hello', hello);
      expect(again.devices).to.deep.equal([{ deviceId: 'dev-r', acked: 10 }]);
      const viewer = await Viewer.join(hub.url, 'conf-r', { resume: false });
      await waitFor(() => viewer.count('dev-r') > 0, 5000, 'replay from Redis');
      expect(viewer.readings.get('dev-r')!.at(-1)).to.deep.include({ seq: 10, value: 36.9 });
      // A resend of what the hub already has is dropped.
      expect(await agent.ok('batch', { deviceId: 'dev-r', from: 1, to: 10, readings })).to.include({ acked: 10 });
      expect(hub.streams!.stats()[0]!.duplicatesDropped).to.equal(10);
      viewer.close();
      agent.close();
    } finally {
      await hub.close();
    }
  });
});
