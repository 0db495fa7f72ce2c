// The device history store: the same behaviour in memory and on Redis
// Streams (sessions, byte budgets, TTL), and a hub on Redis keeps watermarks
// and history across a restart.

import { Redis } from 'ioredis';
import { readingBytes, type DeviceHistoryStore, type DeviceSession, type HistoryLimits } from '../../src/streams/history/deviceHistory.js';
import { MemoryDeviceHistory } from '../../src/streams/history/memoryDeviceHistory.js';
import { RedisDeviceHistory } from '../../src/streams/history/redisDeviceHistory.js';
import type { Reading } from '../../src/devices/reading.js';
import { alarmReading, limitAlarm } from '../support/alarms.js';
import { startTestHub, TestClient } from '../support/hub.js';
import { Viewer, expect, siteToken, sleep, waitFor } from '../agent/uplink-helpers.js';
import { TestRedis } from '../support/redis.js';

const T0 = 1_700_000_000_000;

function waveform(seq: number, t: number, samples: Array<number | null> = [seq, seq + 0.5]): Reading {
  return { deviceId: 'd1', seq, kind: 'waveform', code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', t, rt: t, sampleRate: 250, samples };
}
function numeric(seq: number, t: number, code = 'MDC_ECG_HEART_RATE'): Reading {
  return { deviceId: 'd1', seq, kind: 'numeric', code, unit: '/min', t, rt: t, value: seq };
}
function alarm(seq: number, t: number, text: string): Reading {
  return alarmReading({ seq, t, text });
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

  const stores: Array<[string, (limits?: Partial<HistoryLimits>) => Promise<DeviceHistoryStore>]> = [
    ['memory', async (limits = {}) => new MemoryDeviceHistory({ maxReadings: 1000, ...limits })],
    ['redis', async (limits = {}) => RedisDeviceHistory.connect(redis.url, { maxReadings: 1000, ...limits })],
  ];
  const ALL = Number.MAX_SAFE_INTEGER;
  const session = (conferenceId: string, startSeq = 1): DeviceSession => ({ id: `${conferenceId}-${Math.random().toString(36).slice(2)}`, conferenceId, startSeq });

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
          const s = session('conf-a');
          await store.startSession(id, s);
          expect(await store.record(id)).to.deep.equal({ watermark: 0, session: s });
          // 120 s of device time: a waveform each second, an HR every 10 s, a temperature once.
          const readings: Reading[] = [];
          for (let s = 1; s <= 120; s++) readings.push(r(waveform(readings.length + 1, T0 + s * 1000)));
          readings.splice(5, 0, r(numeric(0, T0 + 5000, 'MDC_TEMP')));
          for (let s = 10; s <= 120; s += 10) readings.push(r(numeric(0, T0 + s * 1000)));
          readings.sort((a, b) => a.t - b.t || a.kind.localeCompare(b.kind));
          readings.forEach((x, i) => (x.seq = i + 1));
          await store.append(id, s, readings.slice(0, 50), 50);
          await store.append(id, s, readings.slice(50), readings.length + 3); // a gap after the last reading
          expect(await store.watermark(id)).to.equal(readings.length + 3);
          expect((await store.range(id, s.id, 10, 20, 100, ALL)).map((x) => x.seq)).to.deep.equal([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
          // Past the count limit: the newest readings of the span, plus the latest value of each code in it.
          const newest = readings.slice(-3).map((x) => x.seq);
          const latestInSpan = ['MDC_TEMP', 'MDC_ECG_HEART_RATE'].map((code) => readings.filter((x) => x.code === code).at(-1)!.seq).filter((seq) => seq > 10);
          expect((await store.range(id, s.id, 10, 200, 3, ALL)).map((x) => x.seq)).to.deep.equal([...new Set([...latestInSpan, ...newest])].sort((a, b) => a - b));
          expect(await store.range(id, s.id, 0, 200, 1000, ALL)).to.deep.equal(readings);
          const snapshot = await store.recent(id, s.id, 60_000, ALL, ALL);
          const waves = snapshot.filter((x) => x.kind === 'waveform');
          expect(waves.map((x) => x.t)).to.deep.equal(Array.from({ length: 61 }, (_, i) => T0 + (60 + i) * 1000));
          const others = snapshot.filter((x) => x.kind !== 'waveform').map((x) => `${x.code}@${x.t}`);
          expect(others).to.deep.equal([`MDC_TEMP@${T0 + 5000}`, `MDC_ECG_HEART_RATE@${T0 + 120_000}`]);
          expect(snapshot.map((x) => x.seq)).to.deep.equal([...snapshot.map((x) => x.seq)].sort((a, b) => a - b));
          // Up to a watermark: nothing newer.
          const upTo = readings[30]!.seq;
          expect((await store.recent(id, s.id, 60_000, upTo, ALL)).every((x) => x.seq <= upTo)).to.equal(true);
          await store.resetWatermark(id, 7);
          expect(await store.watermark(id)).to.equal(7);
        } finally {
          await store.close();
        }
      });

      it('snapshots the latest reading of each alarm identity, ended ones as ended', async () => {
        const store = await make();
        try {
          const id = `d5-${kind}-${Date.now()}`;
          const alarm = (seq: number, alarmId: string, active: boolean, phase: string): Reading => limitAlarm(seq, alarmId, active, phase, { deviceId: id });
          const s = session('conf-alarms');
          await store.startSession(id, s);
          // SpO2-low and HR-low share their event code; SpO2-low ends, HR-low goes on.
          await store.append(id, s, [alarm(1, 'spo2-low', true, 'start'), alarm(2, 'hr-low', true, 'start'), alarm(3, 'spo2-low', false, 'end'), alarm(4, 'hr-low', true, 'continue')], 4);
          const snapshot = await store.recent(id, s.id, 60_000, ALL, ALL);
          expect(snapshot.map((x) => x.kind === 'alarm' && `${x.alarmId}:${x.phase}`)).to.deep.equal(['spo2-low:end', 'hr-low:continue']);
        } finally {
          await store.close();
        }
      });

      it('a new session drops the previous one: its history, its latest values, and any late append to it', async () => {
        const store = await make();
        try {
          const id = `d2-${kind}-${Date.now()}`;
          const x = session('conf-x');
          await store.startSession(id, x);
          await store.append(id, x, [{ ...numeric(1, T0), deviceId: id }, { ...waveform(2, T0), deviceId: id }, { ...alarm(3, T0, 'VF'), deviceId: id }], 3);
          expect((await store.recent(id, x.id, 60_000, ALL, ALL)).map((r) => r.seq)).to.deep.equal([1, 2, 3]);

          const y = session('conf-y', 6);
          await store.startSession(id, y);
          expect(await store.record(id)).to.deep.equal({ watermark: 3, session: y });
          for (const sid of [x.id, y.id]) {
            expect(await store.recent(id, sid, 60_000, ALL, ALL), `snapshot of ${sid}`).to.deep.equal([]);
            expect(await store.range(id, sid, 0, ALL, 1000, ALL), `range of ${sid}`).to.deep.equal([]);
          }
          // A batch of the old session still being processed: the watermark moves, nothing is stored.
          await store.append(id, x, [{ ...alarm(4, T0 + 1, 'ASYSTOLE'), deviceId: id }], 5);
          expect(await store.watermark(id)).to.equal(5);
          expect(await store.recent(id, x.id, 60_000, ALL, ALL)).to.deep.equal([]);
          expect(await store.recent(id, y.id, 60_000, ALL, ALL)).to.deep.equal([]);
          await store.append(id, y, [{ ...numeric(6, T0 + 2), deviceId: id }], 6);
          expect((await store.range(id, y.id, 0, ALL, 1000, ALL)).map((r) => r.seq)).to.deep.equal([6]);
        } finally {
          await store.close();
        }
      });

      it('bounds each session by bytes, and a replay by its byte budget while keeping the latest values', async () => {
        const budget = 20 * readingBytes(waveform(1, T0, new Array(1000).fill(0)));
        const store = await make({ maxBytes: budget });
        try {
          const id = `d3-${kind}-${Date.now()}`;
          const s = session('conf-b');
          await store.startSession(id, s);
          const readings: Reading[] = [];
          for (let i = 1; i <= 100; i++) {
            readings.push(i % 10 === 0 ? { ...numeric(i, T0 + i), deviceId: id } : { ...waveform(i, T0 + i, new Array(1000).fill(i % 7)), deviceId: id });
          }
          for (let i = 0; i < 100; i += 25) await store.append(id, s, readings.slice(i, i + 25), i + 25);
          const kept = await store.range(id, s.id, 0, ALL, 1000, ALL);
          const keptBytes = kept.reduce((sum, r) => sum + readingBytes(r), 0);
          expect(keptBytes, 'history bytes').to.be.at.most(budget);
          expect(kept.at(-1)!.seq).to.equal(100);
          expect(kept.length).to.be.greaterThan(15);
          // Oldest first: what is kept is the newest, contiguous up to the end.
          expect(kept.map((r) => r.seq)).to.deep.equal(readings.slice(-kept.length).map((r) => r.seq));
          expect((kept.find((r) => r.kind === 'waveform') as any).samples).to.deep.equal(new Array(1000).fill(kept.find((r) => r.kind === 'waveform')!.seq % 7));
          // A replay budget of ~3 waveforms: the newest three, and every code's latest value.
          const replayBudget = 3 * readingBytes(readings[0]!) + 10;
          const snapshot = await store.recent(id, s.id, 60_000, ALL, replayBudget);
          expect(snapshot.filter((r) => r.kind === 'waveform').map((r) => r.seq)).to.deep.equal([97, 98, 99]);
          expect(snapshot.filter((r) => r.kind === 'numeric').map((r) => r.seq)).to.deep.equal([100]);
          const resumed = await store.range(id, s.id, 50, ALL, 1000, replayBudget);
          expect(resumed.map((r) => r.seq)).to.deep.equal([98, 99, 100]);
        } finally {
          await store.close();
        }
      });

      it('forgets a device historyTtlMs after its last write', async () => {
        const store = await make({ ttlMs: 400 });
        try {
          const id = `d4-${kind}-${Date.now()}`;
          const s = session('conf-t');
          await store.claim(id, 'site-t');
          await store.startSession(id, s);
          await store.append(id, s, [{ ...numeric(1, T0), deviceId: id }, { ...waveform(2, T0), deviceId: id }], 2);
          await sleep(250);
          await store.append(id, s, [{ ...numeric(3, T0 + 1), deviceId: id }], 3); // a write renews the TTL
          await sleep(250);
          expect((await store.range(id, s.id, 0, ALL, 1000, ALL)).map((r) => r.seq)).to.deep.equal([1, 2, 3]);
          await sleep(400);
          expect(await store.record(id)).to.deep.equal({ watermark: 0 });
          expect(await store.recent(id, s.id, 60_000, ALL, ALL)).to.deep.equal([]);
          expect(await store.range(id, s.id, 0, ALL, 1000, ALL)).to.deep.equal([]);
          // Nothing left behind: no Redis key (each got the TTL), no entry in the memory store.
          if (kind === 'redis') {
            const probe = new Redis(redis.url);
            try {
              expect(await probe.keys(`hoichan:device:{${id}}*`)).to.deep.equal([]);
            } finally {
              probe.disconnect();
            }
          } else {
            expect((store as MemoryDeviceHistory).size).to.equal(0);
          }
          expect(await store.claim(id, 'site-other'), 'the claim expired too').to.equal('site-other');
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
