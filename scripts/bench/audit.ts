// Audit log bench: what record() costs the signaling path (it hashes and
// queues; the disk is someone else's problem), how fast the writer gets a
// burst onto disk, and how fast verify and a selective query read it back.
// Not part of the test suite. Run after building:
//   node dist/scripts/bench/audit.js [--records 200000] [--dir /path/on/the/target/disk]
// Prints a table and writes bench-results/audit.json.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { AuditLog } from '../../src/audit/AuditLog.js';
import { verifyAuditDir } from '../../src/audit/files.js';
import { createLogger } from '../../src/common/logger.js';

createLogger('audit').level = 'warn';

const { values } = parseArgs({ options: { records: { type: 'string', default: '200000' }, dir: { type: 'string' } } });
const total = Number(values.records);
const dir = await mkdtemp(join(values.dir ?? tmpdir(), 'hoichan-audit-bench-'));

// A queue and per-source budget large enough for the whole burst: this measures the writer, not the drop and flood paths.
const audit = await AuditLog.open({ dir, retentionDays: 365, maxQueue: total + 10, maxPerSourcePerMinute: total });
const started = performance.now();
for (let i = 0; i < total; i++) {
  audit.record({
    type: 'device.replay',
    actor: { sub: `specialist-${i % 50}`, role: 'specialist', ip: '10.1.4.23' },
    conferenceId: `conf-${i % 20}`,
    outcome: 'ok',
    target: { peerId: '4b6c1f4e-1d0b-4b8e-9d55-0f8a8f1f2c11', deviceId: `mon-${i % 200}`, resumed: false },
  });
}
const recorded = performance.now();
await audit.flush();
const written = performance.now();
// The query reads the whole day file; signaling must keep running meanwhile.
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();
const query = await audit.query({ conferenceId: 'conf-7', actor: 'specialist-7', limit: 1000 });
const queried = performance.now();
loop.disable();
await audit.close();
const verify = await verifyAuditDir(dir);
const verified = performance.now();
if (!verify.ok || !query.chain.ok) throw new Error('the bench chain did not verify');

const rows = {
  records: total,
  recordMicrosPerCall: ((recorded - started) * 1000) / total,
  writeRecordsPerSecond: total / ((written - started) / 1000),
  queryMs: queried - written,
  queryMatched: query.records.length,
  queryEventLoopDelayMaxMs: loop.max / 1e6,
  verifyRecordsPerSecond: verify.records / ((verified - queried) / 1000),
};
console.log('| measure | value |\n| --- | --- |');
console.log(`| record() on the caller's path | ${rows.recordMicrosPerCall.toFixed(2)} µs per record |`);
console.log(`| burst of ${total} records onto disk | ${Math.round(rows.writeRecordsPerSecond)} records/s |`);
console.log(`| selective query over the day file | ${rows.queryMs.toFixed(0)} ms (${rows.queryMatched} matches) |`);
console.log(`| longest event-loop stall during that query | ${rows.queryEventLoopDelayMaxMs.toFixed(0)} ms |`);
console.log(`| verify | ${Math.round(rows.verifyRecordsPerSecond)} records/s |`);
await mkdir('bench-results', { recursive: true });
await writeFile(join('bench-results', 'audit.json'), JSON.stringify(rows, null, 2));
await rm(dir, { recursive: true, force: true });
