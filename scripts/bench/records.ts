// Records bench: what recording one consultation-hour costs the database and
// the event loop, on SQLite and on PostgreSQL (a throwaway local cluster).
// One "hour" is what the recorder writes for a conference of 3 people and one
// monitor streaming 10 numerics and 3 ECG leads at 250 Hz, with the default
// settings: 720 numeric rows per channel (one per 5 s), 60 strips of 10 s per
// lead, 720 network and device-counter updates, 20 alarms.
//   node dist/scripts/bench/records.js [--hours 20]
// The writes go through the real WriteQueue; the table shows the time to
// commit them, the rows per second, the worst event-loop delay while they were
// written (what media and signaling would have waited), and the SQLite file's
// size per hour. Writes bench-results/records.json.

import './support/quiet.js';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { migrate } from '../../src/records/migrations.js';
import { PostgresDriver } from '../../src/records/postgres.js';
import { RecordsStore } from '../../src/records/RecordsStore.js';
import type { SqlDriver } from '../../src/records/sql.js';
import { SqliteDriver } from '../../src/records/sqlite.js';
import { WriteQueue } from '../../src/records/WriteQueue.js';
import { TestPostgres } from '../../test/support/postgres.js';
import { printTable, writeResults } from './support/common.js';

const { values } = parseArgs({ options: { hours: { type: 'string', default: '20' } } });
const hours = Number(values.hours);

const CHANNELS = ['MDC_ECG_HEART_RATE', 'MDC_PULS_OXIM_SAT_O2', 'MDC_PULS_OXIM_PULS_RATE', 'MDC_RESP_RATE', 'MDC_TEMP', 'MDC_PRESS_BLD_NONINV_SYS', 'MDC_PRESS_BLD_NONINV_DIA', 'MDC_PRESS_BLD_NONINV_MEAN', 'MDC_CONC_AWAY_CO2_ET', 'MDC_BLD_PERF_INDEX'];
const LEADS = ['MDC_ECG_ELEC_POTL_I', 'MDC_ECG_ELEC_POTL_II', 'MDC_ECG_ELEC_POTL_III'];

/** Enqueues one consultation-hour's writes, in the order the recorder makes them. */
function enqueueHour(queue: WriteQueue, t0: number): number {
  let rows = 0;
  const sessionId = randomUUID();
  queue.enqueue('essential', 'session start', (s) => s.startSession({ id: sessionId, conferenceId: 'bench', hubId: 'bench', startedAt: t0 }));
  const participants = [0, 1, 2].map(() => randomUUID());
  participants.forEach((id, i) => queue.enqueue('essential', 'participant join', (s) => s.addParticipant({ id, sessionId, peerId: id, userId: `u${i}`, displayName: `P${i}`, role: i === 0 ? 'specialist' : 'site', siteId: `site-${i}`, hubId: 'bench', joinedAt: t0 })));
  queue.enqueue('essential', 'device', (s) => s.addDevice({ id: randomUUID(), sessionId, deviceId: 'mon', siteId: 'site-1', type: 'vitals', model: 'N12', protocol: 'hl7', channels: [], firstSeenAt: t0 }));
  rows += 5;
  for (let tick = 0; tick < 720; tick++) {
    const t = t0 + tick * 5000;
    const numerics = CHANNELS.map((code, i) => ({ sessionId, deviceId: 'mon', code, unit: '', t, value: 60 + i + (tick % 7) }));
    queue.enqueue('bulk', 'numerics', (s) => s.addNumerics(numerics));
    for (const id of participants) queue.enqueue('bulk', 'network', (s) => s.participantNetwork(id, { samples: tick + 1, bitrateInAvg: 800_000, bitrateOutAvg: 1_600_000, lossInMax: 0.01, lossOutMax: 0.02, rttAvgMs: 40, rttMaxMs: 80 }));
    queue.enqueue('bulk', 'device counters', (s) => s.deviceProgress(sessionId, 'mon', { readings: 1250, gaps: 0, missingReadings: 0, onlineMs: 5000, lastReadingAt: t }));
    rows += CHANNELS.length + participants.length + 1;
    if (tick % 12 === 0) {
      for (const code of LEADS) {
        const samples = Array.from({ length: 2500 }, (_, k) => Math.round(Math.sin(k / 20) * 1000) / 1000);
        queue.enqueue('bulk', 'strip', (s) => s.addWaveform({ sessionId, deviceId: 'mon', code, unit: 'mV', t, sampleRate: 250, samples }));
        rows++;
      }
    }
    if (tick % 36 === 0) {
      const id = randomUUID();
      queue.enqueue('essential', 'alarm', (s) => s.alarmStarted({ id, sessionId, deviceId: 'mon', alarmKey: 'k', code: 'MDC_EVT_LO_VAL_LT_LIM', priority: 'high', text: 'SpO2 low', source: null, startedAt: t }));
      queue.enqueue('essential', 'alarm end', (s) => s.alarmEnded(id, t + 20_000));
      rows += 2;
    }
  }
  queue.enqueue('essential', 'session end', (s) => s.endSession(sessionId, t0 + 3600_000, 'conference_closed'));
  return rows + 1;
}

/** The event loop's delay with nothing to do, for comparison: on a busy machine it is not zero. */
async function idleDelay(): Promise<{ p99: number; max: number }> {
  const idle = monitorEventLoopDelay({ resolution: 5 });
  idle.enable();
  await new Promise((resolve) => setTimeout(resolve, 3000));
  idle.disable();
  return { p99: idle.percentile(99) / 1e6, max: idle.max / 1e6 };
}

async function run(engine: string, driver: SqlDriver, file?: string): Promise<Record<string, unknown>> {
  await migrate(driver);
  const idle = await idleDelay();
  const store = new RecordsStore(driver);
  const queue = new WriteQueue(store, 10_000_000);
  const delay = monitorEventLoopDelay({ resolution: 5 });
  let rows = 0;
  // Everything is queued first (the queue starts draining on the first write, at the next turn), then the
  // event loop's delay is measured while the queue commits: what media and signaling would wait for.
  const start = performance.now();
  for (let h = 0; h < hours; h++) rows += enqueueHour(queue, Date.UTC(2026, 0, 1) + h * 3600_000);
  const enqueued = performance.now();
  delay.enable();
  await queue.flush();
  delay.disable();
  const ms = performance.now() - enqueued;
  await driver.close();
  return {
    engine,
    hours,
    writes: rows,
    'enqueue ms': Math.round(enqueued - start),
    'commit s': ms / 1000,
    'writes/s': Math.round(rows / (ms / 1000)),
    'hours/s': hours / (ms / 1000),
    'loop delay p99 ms': delay.percentile(99) / 1e6,
    'loop delay max ms': delay.max / 1e6,
    'idle p99 ms': idle.p99,
    'idle max ms': idle.max,
    'MB per hour': file ? statSync(file).size / hours / 1048576 : '–',
    failed: queue.failed,
  };
}

const results: Record<string, unknown>[] = [];
const dir = mkdtempSync(join(tmpdir(), 'hoichan-bench-records-'));
try {
  const file = join(dir, 'records.sqlite');
  const sqlite = SqliteDriver.open(file);
  results.push(await run('SQLite', sqlite, file));
  // The WAL is folded into the file before its size is read.
  const check = SqliteDriver.open(file);
  await check.run('PRAGMA wal_checkpoint(TRUNCATE)');
  await check.close();
  results[0]!['MB per hour'] = statSync(file).size / hours / 1048576;
  const cluster = await TestPostgres.start();
  try {
    results.push(await run('PostgreSQL', await PostgresDriver.connect(await cluster.createDatabase('bench'))));
  } finally {
    await cluster.stop();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(printTable(`Records: ${hours} consultation-hours through the write queue`, results));
writeResults('records', { results });
