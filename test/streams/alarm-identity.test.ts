// Alarm identity across the hub (issue 9): the uplink schema carries alarmId,
// state and source, and a late joiner's snapshot holds the latest reading of
// every alarm identity, so two concurrent alarms of one event code both show
// and an ended alarm shows ended. Both history stores.

import type { DeviceHistoryStore } from '../../src/streams/history/deviceHistory.js';
import { MemoryDeviceHistory } from '../../src/streams/history/memoryDeviceHistory.js';
import { RedisDeviceHistory } from '../../src/streams/history/redisDeviceHistory.js';
import { limitAlarm, type AlarmReading } from '../support/alarms.js';
import { alarmNoticeSchema, batchSchema } from '../../src/streams/protocol.js';
import { expect } from '../agent/uplink-helpers.js';
import { TestRedis } from '../support/redis.js';

function alarm(seq: number, id: string, source: string, active: boolean, phase: string): AlarmReading {
  return limitAlarm(seq, id, active, phase, { text: `${source} thấp`, source: { code: source, unit: '%', value: active ? 88 : null } });
}

const SPO2 = 'MDC_EVT_LO_VAL_LT_LIM|MDC_PULS_OXIM_SAT_O2|1.3.1.150456';
const PI = 'MDC_EVT_LO_VAL_LT_LIM|MDC_BLD_PERF_INDEX|1.3.1.150488';

describe('alarm identity on the uplink and in the hub history', function () {
  this.timeout(30_000);

  it('the uplink schema keeps alarmId, state and source, and bounds them', () => {
    const reading = alarm(1, SPO2, 'MDC_PULS_OXIM_SAT_O2', true, 'start');
    const batch = batchSchema.parse({ deviceId: 'd1', from: 1, to: 1, readings: [reading] });
    expect(batch.readings[0]).to.deep.equal(reading);
    expect(alarmNoticeSchema.parse({ deviceId: 'd1', reading }).reading).to.deep.equal(reading);
    const bad = (extra: Record<string, unknown>) => alarmNoticeSchema.safeParse({ deviceId: 'd1', reading: { ...reading, ...extra } }).success;
    expect(bad({ alarmId: 'x'.repeat(385) })).to.equal(false);
    expect(bad({ alarmId: '' })).to.equal(false);
    expect(bad({ state: 's'.repeat(65) })).to.equal(false);
    expect(bad({ source: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', value: Number.NaN } })).to.equal(false);
    expect(bad({ source: { code: '', unit: '%', value: 1 } })).to.equal(false);
    expect(bad({ source: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', value: null } })).to.equal(true);
  });

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
    it(`${kind}: a late joiner gets the latest reading of each of two concurrent alarms of one event code`, async () => {
      const store = await make();
      try {
        const id = `d1-alarms-${kind}-${Date.now()}`;
        const readings = [
          alarm(1, SPO2, 'MDC_PULS_OXIM_SAT_O2', true, 'start'),
          alarm(2, PI, 'MDC_BLD_PERF_INDEX', true, 'start'),
          alarm(3, SPO2, 'MDC_PULS_OXIM_SAT_O2', true, 'continue'),
          alarm(4, SPO2, 'MDC_PULS_OXIM_SAT_O2', false, 'end'),
        ].map((r) => ({ ...r, deviceId: id }));
        const session = { id: `s-${kind}`, conferenceId: 'conf-alarms', startSeq: 1 };
        await store.startSession(id, session);
        await store.append(id, session, readings, 4);
        const snapshot = await store.recent(id, session.id, 1000, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
        expect(snapshot.map((r) => r.seq)).to.deep.equal([2, 4]);
        expect(snapshot.map((r) => r.kind === 'alarm' && [r.alarmId, r.active, r.phase])).to.deep.equal([
          [PI, true, 'start'],
          [SPO2, false, 'end'],
        ]);
        expect(snapshot[1]).to.deep.equal(readings[3]);
        // An alarm without an identity (an older agent) keys by its code, as before.
        const legacy = { ...readings[0]!, seq: 5, alarmId: undefined };
        delete legacy.alarmId;
        await store.append(id, session, [legacy], 5);
        expect((await store.recent(id, session.id, 1000, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)).map((r) => r.seq)).to.deep.equal([2, 4, 5]);
      } finally {
        await store.close();
      }
    });
  }
});
