// Readings/s the Cyton and CMS50 parsers + drivers sustain on one core: a large
// pre-built byte stream is fed through each driver's ingest() (framing, parsing,
// chunking, delivery queue) with a sink that accepts at once. Not a test.
// Run: npx tsc -p tsconfig.json && node dist/scripts/bench/serial-throughput.js
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { DeviceReadingBody, ReadingSink } from '../../src/devices/driver.js';
import { Cms50Driver, CytonDriver, cms50DeviceConfigSchema, cytonDeviceConfigSchema, type SerialDeviceDriver } from '../../src/devices/serial/index.js';

interface BenchResult {
  device: string;
  bytes: number;
  frames: number;
  readings: number;
  samples: number;
  seconds: number;
  framesPerSecond: number;
  readingsPerSecond: number;
  samplesPerSecond: number;
  mbPerSecond: number;
  realTimeFactor: number;
}

class CountingSink implements ReadingSink {
  readings = 0;
  samples = 0;
  async accept(readings: DeviceReadingBody[]): Promise<void> {
    this.readings += readings.length;
    for (const r of readings) if (r.kind === 'waveform') this.samples += r.samples.length;
  }
}

function cytonStream(packets: number): Buffer {
  const out = Buffer.alloc(packets * 33);
  for (let i = 0; i < packets; i++) {
    const at = i * 33;
    out[at] = 0xa0;
    out[at + 1] = i & 0xff;
    for (let c = 0; c < 8; c++) out.writeIntBE(Math.round(Math.sin(i / 20 + c) * 40_000), at + 2 + c * 3, 3);
    out[at + 32] = 0xc0;
  }
  return out;
}

function cms50Stream(packets: number): Buffer {
  const out = Buffer.alloc(packets * 5);
  for (let i = 0; i < packets; i++) {
    const at = i * 5;
    out[at] = 0x85 | (i % 45 === 0 ? 0x40 : 0);
    out[at + 1] = 50 + Math.round(Math.sin(i / 9) * 40);
    out[at + 2] = 0x06;
    out[at + 3] = 72;
    out[at + 4] = 98;
  }
  return out;
}

/** Feeds the stream in 512-byte reads (a typical USB-serial read) with receipt times at the device's rate. */
async function run(device: string, driver: SerialDeviceDriver, sink: CountingSink, stream: Buffer, frameBytes: number, sampleRate: number): Promise<BenchResult> {
  const readSize = 512;
  const t0 = Date.now();
  const msPerByte = 1000 / sampleRate / frameBytes;
  const started = process.hrtime.bigint();
  for (let at = 0; at < stream.length; at += readSize) {
    const end = Math.min(stream.length, at + readSize);
    driver.ingest(stream.subarray(at, end), t0 + end * msPerByte);
    // Let the delivery queue run now and then, as the event loop would.
    if ((at / readSize) % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await driver.drained();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const frames = driver.counters.framesDecoded;
  return {
    device,
    bytes: stream.length,
    frames,
    readings: sink.readings,
    samples: sink.samples,
    seconds: round(seconds, 3),
    framesPerSecond: Math.round(frames / seconds),
    readingsPerSecond: Math.round(sink.readings / seconds),
    samplesPerSecond: Math.round(sink.samples / seconds),
    mbPerSecond: round(stream.length / seconds / 1e6, 2),
    realTimeFactor: Math.round(frames / seconds / sampleRate),
  };
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

async function main(): Promise<void> {
  const cytonSink = new CountingSink();
  const cyton = new CytonDriver('bench-ecg', cytonDeviceConfigSchema.parse({ path: '/nonexistent' }), cytonSink);
  const cmsSink = new CountingSink();
  const cms = new Cms50Driver('bench-spo2', cms50DeviceConfigSchema.parse({ path: '/nonexistent' }), cmsSink);
  // 1 hour of Cyton data (900k packets, ~30 MB) and 2 hours of CMS50 data.
  const results = [
    await run('cyton (8 ch, 250 Hz, 25-sample chunks)', cyton, cytonSink, cytonStream(900_000), 33, 250),
    await run('cms50 (60 Hz, 6-sample chunks, 1 Hz numerics)', cms, cmsSink, cms50Stream(432_000), 5, 60),
  ];
  console.table(results.map((r) => ({
    device: r.device,
    'frames/s': r.framesPerSecond,
    'readings/s': r.readingsPerSecond,
    'samples/s': r.samplesPerSecond,
    'MB/s': r.mbPerSecond,
    'x real time': r.realTimeFactor,
  })));
  const dir = join(process.cwd(), 'bench-results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'serial-throughput.json');
  writeFileSync(file, JSON.stringify({ at: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, results }, null, 2));
  console.log(`wrote ${file}`);
}

await main();
