// Journal bench: append throughput under each fsync policy, and recovery time
// for a 10-minute backlog of a 12-lead 500 Hz ECG plus 1 Hz vitals site.
// Not part of the test suite. Run after building:
//   node dist/scripts/bench/journal.js [--seconds 2] [--dir /path/on/the/target/disk]
// Prints a table and writes bench-results/journal.json.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Journal, type FsyncPolicy } from '../../src/agent/journal/index.js';
import type { DeviceReadingBody } from '../../src/devices/driver.js';
import { createLogger } from '../../src/common/logger.js';

// Open/close info lines would drown the table; warnings (cap, corruption) still show.
const logger = createLogger('journal');
logger.level = 'warn';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '2' }, dir: { type: 'string' }, producers: { type: 'string', default: '8' } },
});
const seconds = Number(values.seconds);
const producers = Number(values.producers);
const base = values.dir ?? tmpdir();

const LEADS = ['I', 'II', 'III', 'AVR', 'AVL', 'AVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'];
const SAMPLES_PER_CHUNK = 25; // 50 ms at 500 Hz
const VITALS: [string, string, number][] = [
  ['MDC_ECG_HEART_RATE', '/min', 72],
  ['MDC_PULS_OXIM_SAT_O2', '%', 97],
  ['MDC_PRESS_BLD_NONINV_SYS', 'mm[Hg]', 120],
  ['MDC_PRESS_BLD_NONINV_DIA', 'mm[Hg]', 80],
  ['MDC_RESP_RATE', '/min', 16],
  ['MDC_TEMP_BODY', 'Cel', 36.8],
];

/** One 50 ms chunk of the 12 leads. */
function ecgChunk(t: number, k: number): DeviceReadingBody[] {
  return LEADS.map((lead, li) => ({
    deviceId: 'ecg-1',
    kind: 'waveform',
    code: `MDC_ECG_ELEC_POTL_${lead}`,
    unit: 'mV',
    t,
    rt: t + 3,
    sampleRate: 500,
    samples: Array.from({ length: SAMPLES_PER_CHUNK }, (_, i) => Math.round(Math.sin((k * 25 + i) / 40 + li) * 1200) / 1000),
  }));
}

function vitals(t: number): DeviceReadingBody[] {
  return VITALS.map(([code, unit, value]) => ({ deviceId: 'vit-1', kind: 'numeric', code, unit, t, rt: t + 3, value }));
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

interface AppendResult {
  policy: FsyncPolicy;
  producers: number;
  appendsPerSec: number;
  readingsPerSec: number;
  mbPerSec: number;
  p50Ms: number;
  p99Ms: number;
  fsyncs: number;
}

async function benchAppend(policy: FsyncPolicy, producers: number): Promise<AppendResult> {
  const dir = await mkdtemp(join(base, 'journal-bench-'));
  const journal = await Journal.open({ dir, fsync: policy, logger });
  const latencies: number[] = [];
  let readings = 0;
  const startBytes = journal.depth().bytes;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  // Several concurrent producers, as drivers are: group commit needs concurrency to group.
  await Promise.all(
    Array.from({ length: producers }, async (_, p) => {
      for (let k = 0; performance.now() < deadline; k++) {
        const batch = ecgChunk(Date.now(), k * producers + p);
        const t0 = performance.now();
        await journal.append(batch);
        latencies.push(performance.now() - t0);
        readings += batch.length;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const bytes = journal.depth().bytes - startBytes;
  const fsyncs = journal.stats().fsyncs;
  await journal.close();
  await rm(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  return {
    policy,
    producers,
    appendsPerSec: Math.round(latencies.length / elapsed),
    readingsPerSec: Math.round(readings / elapsed),
    mbPerSec: Math.round((bytes / elapsed / 1e6) * 10) / 10,
    p50Ms: Math.round(percentile(latencies, 0.5) * 100) / 100,
    p99Ms: Math.round(percentile(latencies, 0.99) * 100) / 100,
    fsyncs,
  };
}

interface RecoveryResult {
  readings: number;
  bytes: number;
  segments: number;
  openMs: number;
  readAllMs: number;
}

async function benchRecovery(): Promise<RecoveryResult> {
  const dir = await mkdtemp(join(base, 'journal-bench-'));
  let journal = await Journal.open({ dir, fsync: 'never', logger });
  const t0 = Date.UTC(2025, 0, 1);
  // 10 minutes: 12 000 ECG chunks of 50 ms, vitals once a second; appended a second at a time.
  for (let s = 0; s < 600; s++) {
    const batch: DeviceReadingBody[] = vitals(t0 + s * 1000);
    for (let c = 0; c < 20; c++) batch.push(...ecgChunk(t0 + s * 1000 + c * 50, s * 20 + c));
    await journal.append(batch);
  }
  await journal.close();

  let started = performance.now();
  journal = await Journal.open({ dir, fsync: 'never', logger });
  const openMs = performance.now() - started;
  const depth = journal.depth();
  started = performance.now();
  let readings = 0;
  for await (const _ of journal.pending()) readings++;
  const readAllMs = performance.now() - started;
  await journal.close();
  await rm(dir, { recursive: true, force: true });
  return { readings, bytes: depth.bytes, segments: depth.segments, openMs: Math.round(openMs), readAllMs: Math.round(readAllMs) };
}

const appends: AppendResult[] = [];
for (const policy of ['always', 'interval', 'never'] as FsyncPolicy[]) appends.push(await benchAppend(policy, producers));
// A closed loop under 'interval' is bound by its 100 ms wait, not by the disk: more producers, same fsync count.
appends.push(await benchAppend('interval', producers * 16));
const recovery = await benchRecovery();

console.log(`append: concurrent closed-loop producers, 12-reading ECG chunks (25 samples each), ${seconds}s per policy, dir ${base}`);
console.table(appends);
console.log('recovery: 10-minute backlog, 12-lead 500 Hz ECG (25-sample chunks) + 6 vitals at 1 Hz');
console.table([recovery]);

await mkdir('bench-results', { recursive: true });
await writeFile(
  join('bench-results', 'journal.json'),
  JSON.stringify({ date: new Date().toISOString(), node: process.version, producers, seconds, dir: base, appends, recovery }, null, 2) + '\n',
);
console.log('wrote bench-results/journal.json');
