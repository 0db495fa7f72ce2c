import { CytonDriver, cytonDeviceConfigSchema } from '../../src/devices/serial/index.js';
import { expect, RecordingSink, sleep } from './serial-helpers.js';

function packets(first: number, count: number): Buffer {
  return Buffer.concat(Array.from({ length: count }, (_, i) => {
    const p = Buffer.alloc(33);
    p[0] = 0xa0;
    p[1] = (first + i) & 0xff;
    p.writeIntBE(first + i, 2, 3);
    p[32] = 0xc1;
    return p;
  }));
}

const ONE_CHANNEL = ['MDC_ECG_ELEC_POTL_I', null, null, null, null, null, null, null];

describe('serial: delivery to the sink', () => {
  it('keeps readings the sink refuses and delivers them, in order, once it accepts', async () => {
    const sink = new RecordingSink();
    const driver = new CytonDriver('ecg-1', cytonDeviceConfigSchema.parse({ path: '/nonexistent', chunkSamples: 5, channels: ONE_CHANNEL }), sink);
    sink.refuse = true;
    const t0 = 1_700_000_000_000;
    for (let i = 0; i < 10; i++) driver.ingest(packets(i * 5, 5), t0 + i * 20 + 16);
    await sleep(150);
    expect(sink.refusals).to.be.greaterThan(0);
    expect(sink.readings).to.have.length(0);
    sink.refuse = false;
    expect(await driver.drained(5000)).to.equal(true);
    const samples = sink.samples('MDC_ECG_ELEC_POTL_I') as number[];
    expect(samples).to.have.length(50);
    const counts = samples.map((mv) => Math.round(mv / (4500 / 24 / 8388607)));
    expect(counts).to.deep.equal(Array.from({ length: 50 }, (_, i) => i));
    expect(driver.delivery.retries).to.be.greaterThan(0);
    expect(driver.delivery.overflowDropped).to.equal(0);
    expect(driver.counters.readingsEmitted).to.equal(10);
  });

  it('bounds the retry buffer and counts what overflows', async () => {
    const sink = new RecordingSink();
    const driver = new CytonDriver('ecg-1', cytonDeviceConfigSchema.parse({ path: '/nonexistent', chunkSamples: 1, channels: ONE_CHANNEL, maxBufferedReadings: 100 }), sink);
    sink.refuse = true;
    const t0 = 1_700_000_000_000;
    for (let i = 0; i < 30; i++) driver.ingest(packets(i * 10, 10), t0 + i * 40 + 36);
    expect(driver.delivery.overflowDropped).to.equal(200);
    expect(driver.delivery.buffered).to.equal(100);
    sink.refuse = false;
    expect(await driver.drained(5000)).to.equal(true);
    // The batch already handed to the sink (0..9) stays; the oldest after it were dropped.
    const counts = (sink.samples('MDC_ECG_ELEC_POTL_I') as number[]).map((mv) => Math.round(mv / (4500 / 24 / 8388607)));
    expect(counts).to.deep.equal([...Array.from({ length: 10 }, (_, i) => i), ...Array.from({ length: 90 }, (_, i) => 210 + i)]);
  });
});
