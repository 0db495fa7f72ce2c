import type { SerialPort } from 'serialport';
import { CMS50_CODES, Cms50Driver, cms50DeviceConfigSchema, createCms50Driver } from '../../src/devices/serial/index.js';
import { Cms50Framer, decodeCms50Packet } from '../../src/devices/serial/cms50/framer.js';
import type { DeviceDriver, DeviceReadingBody } from '../../src/devices/driver.js';
import { closePort, expect, hex, openDeviceEnd, RecordingSink, sleep, startPtyPair, waitFor, writeAndDrain, type PtyPair } from './serial-helpers.js';
import { seededRandom } from '../../src/sim/random.js';

// devices.md 4b examples.
const PR72_SPO2_98 = hex('85 40 06 48 62');
const PR150_SPO2_97_BEEP = hex('C5 40 46 16 61');
const FINGER_OUT = hex('90 00 60 7F 7F');

function fastSettings(path: string): Parameters<typeof createCms50Driver>[1] {
  return { path, reconnect: { minMs: 50, maxMs: 200 }, pathCheckMs: 50, staleAfterMs: 500, chunkSamples: 1, numericIntervalMs: 100 };
}

describe('serial: Contec CMS50D+ driver', function () {
  let pair: PtyPair;
  let device: SerialPort | undefined;
  let driver: DeviceDriver | undefined;

  beforeEach(async () => {
    pair = await startPtyPair('cms50');
  });

  afterEach(async () => {
    await driver?.stop();
    driver = undefined;
    await closePort(device);
    device = undefined;
    await pair.kill();
  });

  it('decodes the devices.md example packets', () => {
    expect(decodeCms50Packet(PR72_SPO2_98)).to.include({ pulseRate: 72, spo2: 98, pleth: 0x40, bar: 6, signal: 5, beep: false, fingerOut: false, probeError: false });
    expect(decodeCms50Packet(PR150_SPO2_97_BEEP)).to.include({ pulseRate: 150, spo2: 97, beep: true, bar: 6 });
    expect(decodeCms50Packet(FINGER_OUT)).to.include({ fingerOut: true, searching: true, spo2: 127, pulseRate: 255 });
  });

  it('turns the example packets written through a pty into exact readings', async () => {
    const sink = new RecordingSink();
    driver = createCms50Driver('spo2-1', fastSettings(pair.a), sink);
    await driver.start();
    device = await openDeviceEnd(pair.b, 19200, 'odd');
    await sleep(100);
    await writeAndDrain(device, PR72_SPO2_98);
    await waitFor(() => sink.numerics().length >= 2, 5000, 'first numerics');
    await sleep(150);
    await writeAndDrain(device, PR150_SPO2_97_BEEP);
    await waitFor(() => sink.numerics().length >= 4, 5000, 'second numerics');
    await sleep(150);
    await writeAndDrain(device, FINGER_OUT);
    await waitFor(() => sink.numerics().length >= 6, 5000, 'finger-out numerics');

    const values = (code: string): (number | null)[] => sink.numerics(code).map((n) => n.value);
    expect(values(CMS50_CODES.spo2)).to.deep.equal([98, 97, null]);
    expect(values(CMS50_CODES.pulseRate)).to.deep.equal([72, 150, null]);
    expect(sink.numerics(CMS50_CODES.spo2)[0]!.unit).to.equal('%');
    expect(sink.numerics(CMS50_CODES.pulseRate)[0]!.unit).to.equal('/min');
    expect(sink.samples(CMS50_CODES.pleth)).to.deep.equal([0x40, 0x40, null]);
    expect(sink.waveforms(CMS50_CODES.pleth)[0]).to.include({ unit: '', sampleRate: 60 });
    const fingerOut = sink.statuses(CMS50_CODES.fingerOut).map((s) => s.active);
    expect(fingerOut).to.deep.equal([false, true]);
    expect(sink.statuses(CMS50_CODES.probeError).map((s) => s.active)).to.deep.equal([false]);
    expect(driver.counters).to.include({ framesDecoded: 3, bytesDiscarded: 0, framesRejected: 0 });
  });

  it('resynchronises after garbage, truncated and split packets written through a pty', async () => {
    const sink = new RecordingSink();
    driver = createCms50Driver('spo2-1', fastSettings(pair.a), sink);
    await driver.start();
    device = await openDeviceEnd(pair.b, 19200, 'odd');
    await sleep(100);
    await writeAndDrain(device, hex('01 02 7F 33'));
    await sleep(30);
    await writeAndDrain(device, hex('85 40 06')); // truncated: the next sync byte rejects it
    await sleep(30);
    await writeAndDrain(device, PR72_SPO2_98.subarray(0, 2));
    await sleep(30);
    await writeAndDrain(device, PR72_SPO2_98.subarray(2));
    await waitFor(() => sink.numerics().length >= 2, 5000, 'numerics after resync');
    expect(sink.numerics(CMS50_CODES.spo2).map((n) => n.value)).to.deep.equal([98]);
    expect(driver.counters).to.include({ framesDecoded: 1, framesRejected: 1, bytesDiscarded: 7 });
  });

  it('infers lost packets from discarded bytes so pleth time stays right', async () => {
    const sink = new RecordingSink();
    const cms = new Cms50Driver('spo2-1', cms50DeviceConfigSchema.parse({ path: '/nonexistent', chunkSamples: 6 }), sink);
    const t0 = 1_700_000_000_000;
    const packets = (n: number): Buffer => Buffer.concat(Array.from({ length: n }, () => PR72_SPO2_98));
    cms.ingest(packets(6), t0 + 5 * (1000 / 60));
    // A packet lost its sync byte: its four other bytes are discarded and count as one missing sample.
    cms.ingest(Buffer.concat([PR72_SPO2_98.subarray(1), packets(5)]), t0 + 11 * (1000 / 60) + 3);
    await cms.drained(1000);
    const chunks = sink.waveforms(CMS50_CODES.pleth);
    expect(chunks.map((c) => c.samples)).to.deep.equal([[64, 64, 64, 64, 64, 64], [null, 64, 64, 64, 64, 64]]);
    expect(chunks[1]!.t - chunks[0]!.t).to.be.closeTo(100, 1e-9);
  });

  it('fuzz: 10,000 random and mutated inputs never throw out of the framer or decoder', function () {
    this.timeout(30_000);
    const random = seededRandom(0xc5050);
    const int = (n: number): number => Math.floor(random() * n);
    class ExposedCms50 extends Cms50Driver {
      run(chunk: Buffer, rt: number): DeviceReadingBody[] {
        const out: DeviceReadingBody[] = [];
        this.decode(chunk, rt, out);
        return out;
      }
    }
    const cms = new ExposedCms50('spo2-fuzz', cms50DeviceConfigSchema.parse({ path: '/nonexistent' }), new RecordingSink());
    const framer = new Cms50Framer({ framesDecoded: 0, framesRejected: 0, bytesDiscarded: 0 });
    const valid = Buffer.concat(Array.from({ length: 200 }, (_, i) => (i % 2 ? PR72_SPO2_98 : PR150_SPO2_97_BEEP)));
    let rt = 1_700_000_000_000;
    let totalBytes = 0;
    const started = Date.now();
    for (let i = 0; i < 10_000; i++) {
      let input: Buffer;
      if (i % 4 === 0) {
        input = Buffer.from(Array.from({ length: int(100) }, () => int(256)));
      } else {
        const start = int(valid.length);
        input = Buffer.from(valid.subarray(start, start + int(100)));
        for (let m = int(6); m > 0 && input.length > 0; m--) {
          const at = int(input.length);
          const op = int(3);
          if (op === 0) input[at] = int(256);
          else if (op === 1) input = Buffer.concat([input.subarray(0, at), input.subarray(at + 1)]);
          else input = Buffer.concat([input.subarray(0, at), Buffer.of(int(256)), input.subarray(at)]);
        }
      }
      totalBytes += input.length;
      rt += int(3) === 0 ? int(3000) : int(40);
      framer.push(input);
      for (const r of cms.run(input, rt)) {
        if (r.kind === 'numeric' && r.value !== null) expect(r.value).to.be.within(1, 254);
        if (r.kind === 'waveform') expect(r.samples.every((s) => s === null || (s >= 0 && s <= 127))).to.equal(true);
      }
    }
    const c = cms.counters;
    expect(c.framesDecoded).to.be.greaterThan(1000);
    expect(c.bytesDiscarded + c.framesDecoded * 5).to.be.at.most(totalBytes);
    expect(Date.now() - started).to.be.below(20_000);
  });

  it('goes offline when the port vanishes and online again when it returns', async function () {
    this.timeout(30_000);
    const sink = new RecordingSink();
    driver = createCms50Driver('spo2-1', fastSettings(pair.a), sink);
    await driver.start();
    device = await openDeviceEnd(pair.b, 19200, 'odd');
    const pump = setInterval(() => {
      if (device?.isOpen) device.write(PR72_SPO2_98);
    }, 17);
    try {
      await waitFor(() => driver!.statusOf('spo2-1').status === 'online', 5000, 'online');
      await pair.kill();
      await waitFor(() => driver!.statusOf('spo2-1').status === 'offline', 5000, 'offline after unplug');
      await closePort(device);
      await pair.restart();
      device = await openDeviceEnd(pair.b, 19200, 'odd');
      const before = sink.readings.length;
      await waitFor(() => driver!.statusOf('spo2-1').status === 'online', 10_000, 'online after replug');
      await waitFor(() => sink.readings.length > before, 5000, 'data after replug');
      expect(driver.counters.reconnects).to.be.at.least(1);
    } finally {
      clearInterval(pump);
    }
  });
});
