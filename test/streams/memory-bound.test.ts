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

async function settled(): Promise<{ heap: number; buffers: number; total: number }> {
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    gc();
  }
  const m = process.memoryUsage();
  return { heap: m.heapUsed, buffers: m.arrayBuffers, total: m.heapUsed + m.arrayBuffers };
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
    const warm = await TestClient.connect(`${hub.url}/uplink`, siteToken(`${SITE}-warm`, CONF));
    try {
      const devices = ['stuff-1', 'stuff-2', 'stuff-3'];
      const hello = {
        version: 1,
        siteId: SITE,
        clock: { offsetMs: 0, rttMs: 1 },
        devices: devices.map((deviceId) => ({ deviceId, conferenceId: CONF, type: 'ecg', model: 'm', protocol: 'hl7-mllp', status: 'online', channels: [], acked: 0, lastSeq: 0 })),
      };
      await agent.ok('hello', hello);
      const next = new Map(devices.map((d) => [d, 1]));
      const send = async (client: TestClient, deviceId: string) => {
        const batch = stuffing(deviceId, next.get(deviceId) ?? 1, 40);
        expect((await client.ok('batch', batch)).acked).to.equal(batch.to);
        next.set(deviceId, batch.to + 1);
        return Buffer.byteLength(JSON.stringify(batch));
      };
      // Warm up on another site (code compiled, socket buffers grown) so the growth measured is what the hub keeps
      // for this site, starting from nothing.
      await warm.ok('hello', { ...hello, siteId: `${SITE}-warm`, devices: [{ ...hello.devices[0]!, deviceId: 'warm-1' }] });
      for (let i = 0; i < 6; i++) await send(warm, 'warm-1');
      const before = await settled();
      let sent = 0;
      for (let round = 0; round < 30; round++) {
        for (const deviceId of devices) sent += await send(agent, deviceId);
      }
      const after = await settled();
      const growth = after.total - before.total;
      // eslint-disable-next-line no-console
      console.log(
        `      sent ${(sent / MB).toFixed(1)} MB of batches; hub heap+buffers grew ${(growth / MB).toFixed(1)} MB ` +
          `(heap ${((after.heap - before.heap) / MB).toFixed(1)}, buffers ${((after.buffers - before.buffers) / MB).toFixed(1)}; ` +
          `${(growth / sent).toFixed(2)} bytes per byte sent; site budget ${perSite / MB} MB)`,
      );
      // The history holds at most the site budget (estimated as samples x 8 + overhead, which is
      // what a Float64Array costs); the margin is per-reading objects and allocator slack. Without
      // the budgets the same run grew the hub by ~277 MB (4 bytes per byte sent).
      expect(growth, 'heap growth').to.be.below(1.5 * perSite + 8 * MB);
      const stored = hub.streams!.stats().filter((s) => s.siteId === SITE);
      expect(stored.map((s) => s.stored)).to.deep.equal(devices.map(() => 1200));
    } finally {
      warm.close();
      agent.close();
      await hub.close();
    }
  });
});
