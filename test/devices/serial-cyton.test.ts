import type { SerialPort } from 'serialport';
import { createCytonDriver, CytonDriver, cytonDeviceConfigSchema } from '../../src/devices/serial/index.js';
import { CytonFramer, decodeCytonPacket } from '../../src/devices/serial/cyton/framer.js';
import type { DeviceDriver, DriverStatus } from '../../src/devices/driver.js';
import { closePort, expect, hex, openDeviceEnd, RecordingSink, sleep, startPtyPair, waitFor, writeAndDrain, type PtyPair } from './serial-helpers.js';
import { seededRandom } from '../../src/sim/random.js';

// devices.md 4b: ch1 = +1000 counts, ch2 = -1000 counts, accel Z = 1 g.
const EXAMPLE = hex('A0 01 00 03 E8 FF FC 18' + '00'.repeat(18) + '00 00 00 00 1F 40 C0');
const MV_PER_COUNT_GAIN_24 = 4500 / 24 / 8388607;

function packet(sampleNumber: number, counts: number[], footer = 0xc0): Buffer {
  const bytes = Buffer.alloc(33);
  bytes[0] = 0xa0;
  bytes[1] = sampleNumber & 0xff;
  for (let c = 0; c < 8; c++) bytes.writeIntBE(counts[c] ?? 0, 2 + c * 3, 3);
  bytes[32] = footer;
  return bytes;
}

function stream(firstSampleNumber: number, count: number): Buffer {
  return Buffer.concat(Array.from({ length: count }, (_, i) => packet(firstSampleNumber + i, [i * 10, -i * 10])));
}

function fastSettings(path: string): Parameters<typeof createCytonDriver>[1] {
  return { path, reconnect: { minMs: 50, maxMs: 200 }, pathCheckMs: 50, staleAfterMs: 500 };
}

describe('serial: OpenBCI Cyton driver', function () {
  let pair: PtyPair;
  let device: SerialPort | undefined;
  let driver: DeviceDriver | undefined;

  beforeEach(async () => {
    pair = await startPtyPair('cyton');
  });

  afterEach(async () => {
    await driver?.stop();
    driver = undefined;
    await closePort(device);
    device = undefined;
    await pair.kill();
  });

  it('decodes the devices.md example frame to exact mV (gain 24)', async () => {
    const direct = decodeCytonPacket(EXAMPLE, 0);
    expect(direct.sampleNumber).to.equal(1);
    expect([...direct.counts]).to.deep.equal([1000, -1000, 0, 0, 0, 0, 0, 0]);
    expect(direct.footer).to.equal(0xc0);
    expect(direct.aux.readInt16BE(4) * (0.002 / 16)).to.equal(1);

    const sink = new RecordingSink();
    driver = createCytonDriver('ecg-1', { ...fastSettings(pair.a), chunkSamples: 1 }, sink);
    await driver.start();
    device = await openDeviceEnd(pair.b, 115200);
    const commands: Buffer[] = [];
    device.on('data', (d: Buffer) => commands.push(d));
    await waitFor(() => Buffer.concat(commands).includes('b'), 5000, "driver's start command 'b'");
    await writeAndDrain(device, EXAMPLE);
    await waitFor(() => sink.readings.length >= 8, 5000, 'readings');

    const byCode = Object.fromEntries(sink.waveforms().map((w) => [w.code, w]));
    expect(byCode.MDC_ECG_ELEC_POTL_I!.samples).to.deep.equal([1000 * MV_PER_COUNT_GAIN_24]);
    expect(byCode.MDC_ECG_ELEC_POTL_II!.samples).to.deep.equal([-1000 * MV_PER_COUNT_GAIN_24]);
    expect(byCode.MDC_ECG_ELEC_POTL_I!.samples[0]).to.be.closeTo(0.0223517, 1e-7);
    for (const code of ['III', 'V1', 'V2', 'V3', 'V4', 'V5']) expect(byCode[`MDC_ECG_ELEC_POTL_${code}`]!.samples).to.deep.equal([0]);
    for (const w of sink.waveforms()) {
      expect(w.unit).to.equal('mV');
      expect(w.sampleRate).to.equal(250);
      expect(w.deviceId).to.equal('ecg-1');
      expect(w.t).to.be.at.most(w.rt);
    }
    expect(driver.counters.framesDecoded).to.equal(1);
    expect(driver.counters.bytesDiscarded).to.equal(0);
    expect(driver.statusOf('ecg-1').status).to.equal('online');
  });

  it('resynchronises after garbage, truncated and split frames written through a pty', async () => {
    const sink = new RecordingSink();
    driver = createCytonDriver('ecg-1', { ...fastSettings(pair.a), chunkSamples: 1, channels: ['MDC_ECG_ELEC_POTL_I', null, null, null, null, null, null, null] }, sink);
    await driver.start();
    device = await openDeviceEnd(pair.b, 115200);
    await sleep(100);
    const garbage = Buffer.from([0x00, 0xa0, 0x13, 0xc0, 0xff, 0xa0, 0xa0, 0x42, 0xc6, 0x01]);
    const truncated = packet(5, [555]).subarray(0, 20);
    const good1 = packet(6, [600]);
    const good2 = packet(7, [700]);
    await writeAndDrain(device, garbage);
    await sleep(30);
    await writeAndDrain(device, truncated);
    await sleep(30);
    // good1 in three pieces, far enough apart to arrive as separate reads.
    await writeAndDrain(device, good1.subarray(0, 5));
    await sleep(30);
    await writeAndDrain(device, good1.subarray(5, 21));
    await sleep(30);
    await writeAndDrain(device, Buffer.concat([good1.subarray(21), good2]));
    await waitFor(() => sink.readings.length >= 2, 5000, 'two good frames');

    expect(sink.samples('MDC_ECG_ELEC_POTL_I')).to.deep.equal([600 * MV_PER_COUNT_GAIN_24, 700 * MV_PER_COUNT_GAIN_24]);
    expect(driver.counters.framesDecoded).to.equal(2);
    expect(driver.counters.bytesDiscarded).to.equal(garbage.length + truncated.length);
    expect(driver.counters.framesRejected).to.be.greaterThan(0);
  });

  it('fills dropped packets with null samples so later samples keep their time', async () => {
    const sink = new RecordingSink();
    const cyton = new CytonDriver('ecg-1', cytonDeviceConfigSchema.parse({ path: '/nonexistent', chunkSamples: 10, channels: ['MDC_ECG_ELEC_POTL_I', null, null, null, null, null, null, null] }), sink);
    const t0 = 1_700_000_000_000;
    // Packets 250..259 arrive at t0+36 (10 samples = 40 ms), 260..262 are lost, 263..276 arrive 56 ms later.
    cyton.ingest(stream(250, 10), t0 + 36);
    cyton.ingest(Buffer.concat([stream(263, 14)]), t0 + 36 + 68);
    await cyton.drained(1000);
    const chunks = sink.waveforms();
    expect(chunks.map((c) => c.samples.length)).to.deep.equal([10, 10]);
    expect(chunks[1]!.samples.slice(0, 3)).to.deep.equal([null, null, null]);
    expect(chunks[1]!.samples.slice(3, 5)).to.deep.equal([0, 10 * MV_PER_COUNT_GAIN_24]);
    expect(chunks[0]!.t).to.equal(t0);
    expect(chunks[1]!.t).to.equal(t0 + 40);
    expect(cyton.gapCounters).to.include({ gaps: 1, missingSamples: 3 });
    // The sample counter wraps 255 -> 0 without being taken for a gap.
    expect(chunks[0]!.samples.every((s) => s !== null)).to.equal(true);
  });

  it('ignores a corrupted sample counter that would need samples from the future', async () => {
    const sink = new RecordingSink();
    const cyton = new CytonDriver('ecg-1', cytonDeviceConfigSchema.parse({ path: '/nonexistent', chunkSamples: 5, channels: ['MDC_ECG_ELEC_POTL_I', null, null, null, null, null, null, null] }), sink);
    const t0 = 1_700_000_000_000;
    cyton.ingest(stream(10, 5), t0);
    cyton.ingest(Buffer.concat([packet(15, [1]), packet(15 ^ 0x40, [2]), packet(17, [3]), packet(18, [4]), packet(19, [5])]), t0 + 20);
    await cyton.drained(1000);
    expect(sink.waveforms().map((c) => c.samples.length)).to.deep.equal([5, 5]);
    expect(sink.waveforms()[1]!.t).to.equal(sink.waveforms()[0]!.t + 20);
    expect(cyton.gapCounters.implausibleJumps).to.equal(2);
  });

  it('fuzz: 10,000 random and mutated inputs never throw out of the framer or decoder', function () {
    this.timeout(30_000);
    const random = seededRandom(0x5eed);
    const int = (n: number): number => Math.floor(random() * n);
    class ExposedCyton extends CytonDriver {
      run(chunk: Buffer, rt: number): number {
        const out: Parameters<CytonDriver['decode']>[2] = [];
        this.decode(chunk, rt, out);
        return out.length;
      }
    }
    const driverUnderTest = new ExposedCyton('ecg-fuzz', cytonDeviceConfigSchema.parse({ path: '/nonexistent' }), new RecordingSink());
    const framer = new CytonFramer({ framesDecoded: 0, framesRejected: 0, bytesDiscarded: 0 });
    const valid = stream(0, 300);
    const started = Date.now();
    let rt = 1_700_000_000_000;
    let totalBytes = 0;
    for (let i = 0; i < 10_000; i++) {
      let input: Buffer;
      switch (i % 4) {
        case 0:
          input = Buffer.from(Array.from({ length: int(200) }, () => (random() < 0.1 ? 0xa0 : random() < 0.1 ? 0xc0 + int(8) : int(256))));
          break;
        default: {
          const start = int(valid.length);
          input = Buffer.from(valid.subarray(start, start + int(200)));
          for (let m = int(6); m > 0 && input.length > 0; m--) {
            const at = int(input.length);
            const op = int(3);
            if (op === 0) input[at] = int(256);
            else if (op === 1) input = Buffer.concat([input.subarray(0, at), input.subarray(at + 1)]);
            else input = Buffer.concat([input.subarray(0, at), Buffer.of(random() < 0.5 ? 0xa0 : int(256)), input.subarray(at)]);
          }
        }
      }
      totalBytes += input.length;
      rt += int(3) === 0 ? int(3000) : int(40);
      framer.push(input);
      driverUnderTest.run(input, rt);
    }
    const c = driverUnderTest.counters;
    expect(c.framesDecoded).to.be.greaterThan(1000);
    expect(c.bytesDiscarded + c.framesDecoded * 33).to.be.at.most(totalBytes);
    expect(Date.now() - started).to.be.below(20_000);
  });

  it('goes offline when the port vanishes, reconnects when it returns, and degrades when data stops', async function () {
    this.timeout(30_000);
    const sink = new RecordingSink();
    driver = createCytonDriver('ecg-1', fastSettings(pair.a), sink);
    const statuses: DriverStatus[] = [];
    driver.on('status', (_id, s) => statuses.push(s));
    await driver.start();
    device = await openDeviceEnd(pair.b, 115200);
    let sampleNumber = 0;
    const pump = setInterval(() => {
      if (device?.isOpen) device.write(stream(sampleNumber, 5));
      sampleNumber = (sampleNumber + 5) & 0xff;
    }, 20);
    try {
      await waitFor(() => driver!.statusOf('ecg-1').status === 'online', 5000, 'online');
      await pair.kill();
      await waitFor(() => driver!.statusOf('ecg-1').status === 'offline', 5000, 'offline after unplug');
      expect(driver.statusOf('ecg-1').reason).to.match(/port .* (not found|disconnected|closed)/);
      await closePort(device);
      await pair.restart();
      device = await openDeviceEnd(pair.b, 115200);
      const before = sink.readings.length;
      await waitFor(() => driver!.statusOf('ecg-1').status === 'online', 10_000, 'online after replug');
      await waitFor(() => sink.readings.length > before, 5000, 'data after replug');
      expect(driver.counters.reconnects).to.be.at.least(1);
      clearInterval(pump);
      await waitFor(() => driver!.statusOf('ecg-1').status === 'degraded', 5000, 'degraded when data stops');
      expect(driver.statusOf('ecg-1').reason).to.match(/no data/);
    } finally {
      clearInterval(pump);
    }
    const sequence = statuses.map((s) => s.status);
    expect(sequence).to.include.members(['online', 'offline', 'degraded']);
  });
});
