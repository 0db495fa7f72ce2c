// Issue 9 item 5: a serial stream that pauses mid-chunk shows its last
// samples within flushAfterMs, with the port still open, and the next chunk's
// time continues on the sample clock.

import type { SerialPort } from 'serialport';
import { CMS50_CODES, createCms50Driver } from '../../src/devices/serial/index.js';
import type { DeviceDriver } from '../../src/devices/driver.js';
import type { Cms50Driver } from '../../src/devices/serial/cms50/driver.js';
import { closePort, expect, hex, openDeviceEnd, RecordingSink, sleep, startPtyPair, waitFor, writeAndDrain, type PtyPair } from './serial-helpers.js';

/** A CMS50D+ live packet (devices.md 4b: PR 72, SpO2 98) carrying pleth value `pleth` (0..127). */
function packet(pleth: number): Buffer {
  const bytes = hex('85 40 06 48 62');
  bytes[1] = pleth;
  return bytes;
}

const RATE = 60;
const PERIOD = 1000 / RATE;

describe('serial: partial waveform chunks are flushed after flushAfterMs', function () {
  this.timeout(30_000);
  let pair: PtyPair | undefined;
  let device: SerialPort | undefined;
  let driver: DeviceDriver | undefined;

  afterEach(async () => {
    await driver?.stop();
    driver = undefined;
    await closePort(device);
    device = undefined;
    await pair?.kill();
    pair = undefined;
  });

  it('a pty stream that stops mid-chunk: its last samples reach the sink while the port is open', async () => {
    pair = await startPtyPair('flush');
    const sink = new RecordingSink();
    // Default flushAfterMs (100); staleAfterMs long so "online" below means "port open, frames decoded".
    driver = createCms50Driver('spo2-flush', { path: pair.a, reconnect: { minMs: 50, maxMs: 200 }, pathCheckMs: 50, staleAfterMs: 20_000, chunkSamples: 6, sampleRate: RATE }, sink);
    await driver.start();
    device = await openDeviceEnd(pair.b, 19200, 'odd');
    await sleep(100);
    // 15 samples = two whole chunks of 6 and 3 left over; then the device goes quiet.
    for (let i = 1; i <= 15; i++) {
      await writeAndDrain(device, packet(i));
      await sleep(PERIOD);
    }
    await waitFor(() => sink.samples(CMS50_CODES.pleth).length === 15, 10_000, 'the last 3 samples');
    expect(driver.statusOf('spo2-flush').status).to.equal('online');
    expect(device.isOpen).to.equal(true);
    expect(sink.samples(CMS50_CODES.pleth)).to.deep.equal(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(sink.waveforms(CMS50_CODES.pleth).at(-1)!.samples).to.deep.equal([13, 14, 15]);
  });

  it('the chunk after a flushed partial one continues on the sample clock, and a steady stream keeps whole chunks', async () => {
    const sink = new RecordingSink();
    driver = createCms50Driver('spo2-clock', { path: '/dev/null-not-opened', chunkSamples: 6, sampleRate: RATE, flushAfterMs: 50 }, sink);
    const cms50 = driver as Cms50Driver;
    const t0 = Date.now() - 5000;
    let index = 0;
    // ingest() is what the port calls with each read; receive times here follow the device's 60 Hz exactly.
    const feed = (n: number) => {
      for (let i = 0; i < n; i++, index++) cms50.ingest(packet((index % 100) + 1), t0 + index * PERIOD);
    };
    feed(15);
    await waitFor(() => sink.samples(CMS50_CODES.pleth).length === 15, 10_000, 'the flushed partial chunk');
    feed(12);
    await waitFor(() => sink.samples(CMS50_CODES.pleth).length === 27, 10_000, 'the chunks after it');
    const chunks = sink.waveforms(CMS50_CODES.pleth);
    expect(chunks.map((w) => w.samples.length)).to.deep.equal([6, 6, 3, 6, 6]);
    const first = chunks[0]!.t;
    const starts = [0, 6, 12, 15, 21];
    chunks.forEach((w, i) => expect(w.t, `chunk ${i} t`).to.be.closeTo(first + starts[i]! * PERIOD, 1e-6));
    expect(sink.samples(CMS50_CODES.pleth)).to.deep.equal(Array.from({ length: 27 }, (_, i) => i + 1));
  });
});
