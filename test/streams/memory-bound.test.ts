// Memory stuffing (issue 10): one site token sending batches that are within
// every per-message limit (1000 readings, 10,000 samples a reading, 1 MB frames)
// must not grow the hub beyond the byte budgets it is configured with. Heap is
// measured after a full GC (heap plus ArrayBuffers: the memory store keeps
// waveform samples in Float64Arrays, which live outside the JS heap).

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect, siteToken } from '../agent/uplink-helpers.js';
import { TestClient, startTestHub } from '../support/hub.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const MB = 1024 * 1024;
const CONF = 'conf-stuffing';
const SITE = 'site-stuffing';

async function settledBytes(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    gc();
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** A batch of `count` waveforms of 10,000 one-digit samples: ~20 kB of JSON a reading, as small per sample as JSON gets. */
function stuffing(deviceId: string, from: number, count: number) {
  const t = Date.now();
  const samples = Array.from({ length: 10_000 }, (_, i) => (i * 7 + from) % 10);
  const readings = Array.from({ length: count }, (_, i) => ({ deviceId, seq: from + i, kind: 'waveform', code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', t: t + i, rt: t + i, sampleRate: 500, samples }));
  return { deviceId, from, to: from + count - 1, readings };
}

describe('memory stuffing through the uplink', function () {
  this.timeout(180_000);

  it('keeps the hub heap growth within the configured history byte budget', async () => {
    const perDevice = 6 * MB;
    const perSite = 8 * MB;
    const hub = await startTestHub({
      devices: {
        historyBytesPerDevice: perDevice,
        historyBytesPerSite: perSite,
        // This test is about what the hub keeps, not the rate: let it all in.
        uplinkReadingsPerSecond: 1e9,
        uplinkBurst: 1e9,
        uplinkBytesPerSecond: 1e12,
        uplinkBytesBurst: 1e12,
      },
    });
    const agent = await TestClient.connect(`${hub.url}/uplink`, siteToken(SITE, CONF));
    try {
      const devices = ['stuff-1', 'stuff-2', 'stuff-3'];
      const hello = {
        version: 1,
        siteId: SITE,
        clock: { offsetMs: 0, rttMs: 1 },
        devices: devices.map((deviceId) => ({ deviceId, conferenceId: CONF, type: 'ecg', model: 'm', protocol: 'hl7-mllp', status: 'online', channels: [], acked: 0, lastSeq: 0 })),
      };
      await agent.ok('hello', hello);
      const before = await settledBytes();
      let sent = 0;
      const next = new Map(devices.map((d) => [d, 1]));
      for (let round = 0; round < 30; round++) {
        for (const deviceId of devices) {
          const batch = stuffing(deviceId, next.get(deviceId)!, 40);
          sent += Buffer.byteLength(JSON.stringify(batch));
          expect((await agent.ok('batch', batch)).acked).to.equal(batch.to);
          next.set(deviceId, batch.to + 1);
        }
      }
      const growth = (await settledBytes()) - before;
      // eslint-disable-next-line no-console
      console.log(`      sent ${(sent / MB).toFixed(1)} MB of batches; hub heap+buffers grew ${(growth / MB).toFixed(1)} MB (${(growth / sent).toFixed(2)} bytes per byte sent; site budget ${perSite / MB} MB)`);
      // The history holds at most the site budget (estimated as samples x 8 + overhead, which is
      // what a Float64Array costs); the rest is per-reading object overhead and allocator slack.
      expect(growth, 'heap growth').to.be.below(2 * perSite + 16 * MB);
      const stored = hub.streams!.stats().filter((s) => s.siteId === SITE);
      expect(stored.map((s) => s.stored)).to.deep.equal(devices.map(() => 1200));
    } finally {
      agent.close();
      await hub.close();
    }
  });
});
