import { spawn } from 'node:child_process';
import { appendFile, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Journal } from '../../src/agent/journal/index.js';
import { scanRecords } from '../../src/agent/journal/format.js';
import type { Reading } from '../../src/devices/reading.js';
import { numeric, removeDir, segmentFiles, tempDir, waveform, expect } from './journal-helpers.js';

const writer = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'journal-writer.js');

async function all(journal: Journal): Promise<Reading[]> {
  const out: Reading[] = [];
  for await (const r of journal.pending()) out.push(r);
  return out;
}

/** Runs the writer child until it has reported `atLeast` durable appends, then SIGKILLs it. */
async function runAndKill(dir: string, policy: string, atLeast: number, key?: Buffer): Promise<Map<string, number>> {
  const child = spawn(process.execPath, ['--enable-source-maps', writer, dir, policy, '16384', ...(key ? [key.toString('hex')] : [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_ENV: 'test' },
  });
  const durable = new Map<string, number>();
  let lines = 0;
  let stderr = '';
  let partial = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      const text = partial + d.toString();
      const parts = text.split('\n');
      partial = parts.pop()!;
      for (const line of parts) {
        const [id, seq] = line.split(' ');
        if (seq === undefined) continue;
        durable.set(id!, Math.max(durable.get(id!) ?? 0, Number(seq)));
        if (++lines >= atLeast) {
          child.kill('SIGKILL'); // mid-stream: the child is busy appending
          resolve();
        }
      }
    });
    void exited.then(({ signal }) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`writer died: ${stderr}`))));
  });
  const end = await exited;
  expect(end.signal).to.equal('SIGKILL');
  return durable;
}

function checkIntact(r: Reading): void {
  const n = Number(r.code.slice('MDC_TEST_'.length));
  if (r.kind === 'waveform') expect(r.samples).to.deep.equal(Array.from({ length: 25 }, (_, i) => n * 1000 + i));
  else if (r.kind === 'numeric') expect(r.value).to.equal(n * 2);
  else expect.fail(`unexpected kind ${r.kind}`);
}

describe('journal: crash recovery', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  const KEY = Buffer.from('8f1c2a9e4b7d3f60a5c8e1b2d4f6a7c9e0b1d2f3a4c5e6f708192a3b4c5d6e7f', 'hex');
  for (const [policy, key] of [['interval', undefined], ['always', undefined], ['interval', KEY]] as const) {
    it(`keeps every reading reported durable after kill -9 (fsync ${policy}${key ? ', encrypted' : ''}), twice over`, async function () {
      this.timeout(30_000);
      const withKey = key ? { encryptionKey: key } : {};
      let reported = new Map<string, number>();
      for (let round = 0; round < 2; round++) {
        const durable = await runAndKill(dir, policy, 1000, key);
        if (key) {
          // Sealed at rest: no reading code or value of the writer's in any segment.
          for (const file of await segmentFiles(dir)) {
            const bytes = await readFile(join(dir, file));
            expect(bytes.includes('MDC_TEST_'), file).to.equal(false);
            expect(bytes.includes('"value"'), file).to.equal(false);
            expect(bytes.includes('"samples"'), file).to.equal(false);
          }
        }
        for (const [id, seq] of durable) expect(seq, `${id} continues past round ${round - 1}`).to.be.greaterThan(reported.get(id) ?? 0);
        reported = durable;

        const journal = await Journal.open({ dir, fsync: 'never', segmentBytes: 16384, ...withKey });
        const readings = await all(journal);
        const bySeq = new Map<string, number[]>();
        for (const r of readings) {
          checkIntact(r);
          const seqs = bySeq.get(r.deviceId) ?? [];
          seqs.push(r.seq);
          bySeq.set(r.deviceId, seqs);
        }
        for (const [id, top] of reported) {
          const seqs = bySeq.get(id)!;
          // Nothing acked, nothing dropped: 1..N without holes or repeats, covering all reported.
          expect(seqs, id).to.deep.equal(Array.from({ length: seqs.length }, (_, i) => i + 1));
          expect(seqs.length, id).to.be.at.least(top);
          expect(journal.lastSeq(id)).to.equal(seqs.length);
        }
        expect(journal.stats().corruptRegions).to.equal(0);
        await journal.close();
      }
      const journal = await Journal.open({ dir, fsync: 'never', ...withKey });
      const before = journal.lastSeq('vit-1');
      const [r] = await journal.append([numeric('vit-1', 1)]);
      expect(r!.seq).to.equal(before + 1);
      await journal.close();
    });
  }

  async function tenReadings(): Promise<string> {
    const journal = await Journal.open({ dir, fsync: 'never' });
    for (let i = 0; i < 10; i++) await journal.append([waveform('ecg-1', i * 25)]);
    await journal.close();
    return join(dir, (await segmentFiles(dir))[0]!);
  }

  it('drops a torn last record and truncates the file at the last good record', async () => {
    const segment = await tenReadings();
    const size = (await stat(segment)).size;
    const recordBytes = scanRecords(await readFile(segment)).records[9]!.length;
    await truncate(segment, size - 7);

    let journal = await Journal.open({ dir, fsync: 'never' });
    expect((await all(journal)).map((r) => r.seq)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(journal.stats()).to.include({ tornTails: 1, tornBytes: recordBytes - 7, corruptRegions: 0 });
    expect((await stat(segment)).size).to.equal(size - recordBytes);
    // close() had checkpointed lastSeq 10: a seq the journal once handed out is never reused.
    expect((await journal.append([waveform('ecg-1', 0)]))[0]!.seq).to.equal(11);
    await journal.close();

    journal = await Journal.open({ dir, fsync: 'never' });
    expect(journal.stats().tornTails).to.equal(0);
    expect((await all(journal)).map((r) => r.seq)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 11]);
    await journal.close();
  });

  it('drops garbage after the last record, including a short length field and a header-like prefix', async () => {
    const segment = await tenReadings();
    const size = (await stat(segment)).size;
    const valid = await readFile(segment);
    // A copy of a real header with the payload cut off, then junk, then 3 bytes (shorter than a length).
    await appendFile(segment, Buffer.concat([valid.subarray(0, 40), Buffer.alloc(100, 0xab), Buffer.from([1, 2, 3])]));

    const journal = await Journal.open({ dir, fsync: 'never' });
    expect((await all(journal)).map((r) => r.seq)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(journal.stats()).to.include({ tornTails: 1, tornBytes: 143 });
    expect((await stat(segment)).size).to.equal(size);
    await journal.close();
  });

  it('skips a corrupted record in the middle of a segment and reads on past it', async () => {
    const segment = await tenReadings();
    const buf = await readFile(segment);
    const fifth = scanRecords(buf).records[4]!;
    buf[fifth.offset + 60]! ^= 0x10; // one bit of the 5th record's body
    await writeFile(segment, buf);

    const journal = await Journal.open({ dir, fsync: 'never' });
    const readings = await all(journal);
    expect(readings.map((r) => r.seq)).to.deep.equal([1, 2, 3, 4, 6, 7, 8, 9, 10]);
    for (const r of readings) expect(r).to.deep.equal({ ...waveform('ecg-1', (r.seq - 1) * 25), seq: r.seq });
    expect(journal.stats()).to.include({ corruptRegions: 1, corruptBytes: fifth.length, tornTails: 0 });
    expect(journal.lastSeq('ecg-1')).to.equal(10);
    expect((await journal.append([waveform('ecg-1', 0)]))[0]!.seq).to.equal(11);
    await journal.close();
  });
});
