import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Journal } from '../../src/agent/journal/index.js';
import { crc32c } from '../../src/agent/journal/crc32c.js';
import { decodeReading, encodeRecord, scanRecords } from '../../src/agent/journal/format.js';
import type { Reading } from '../../src/devices/reading.js';
import { alarm, numeric, removeDir, segmentFiles, status, tempDir, waveform, expect } from './journal-helpers.js';

async function all(journal: Journal, deviceId?: string): Promise<Reading[]> {
  const out: Reading[] = [];
  for await (const r of journal.pending(deviceId, 7)) out.push(r);
  return out;
}

describe('journal: format', () => {
  it('computes CRC-32C check values', () => {
    expect(crc32c(Buffer.from('123456789'))).to.equal(0xe3069283);
    expect(crc32c(Buffer.alloc(32))).to.equal(0x8a9136aa);
    const buf = Buffer.from('The quick brown fox jumps over the lazy dog, twice over.');
    expect(crc32c(buf, 13, buf.length, crc32c(buf, 0, 13))).to.equal(crc32c(buf));
  });

  it('round-trips a reading through a record', () => {
    const reading = { ...waveform('ecg-1', 0), seq: 42 } as Reading;
    const record = encodeRecord(reading);
    const scan = scanRecords(record);
    expect(scan.records).to.have.length(1);
    expect(scan.validEnd).to.equal(record.length);
    expect(decodeReading(record, scan.records[0]!)).to.deep.equal(reading);
  });
});

describe('journal: append, read, ack', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  it('assigns seqs per device from 1 and reads them back in order', async () => {
    const journal = await Journal.open({ dir, fsync: 'never' });
    const first = await journal.append([numeric('vit-1', 80), waveform('ecg-1', 0), numeric('vit-1', 81)]);
    expect(first.map((r) => [r.deviceId, r.seq])).to.deep.equal([
      ['vit-1', 1],
      ['ecg-1', 1],
      ['vit-1', 2],
    ]);
    await journal.append([alarm('vit-1', 'HR high'), status('ecg-1', true), waveform('ecg-1', 25)]);
    const read = await all(journal);
    expect(read.map((r) => `${r.deviceId}:${r.seq}:${r.kind}`)).to.deep.equal([
      'vit-1:1:numeric',
      'ecg-1:1:waveform',
      'vit-1:2:numeric',
      'vit-1:3:alarm',
      'ecg-1:2:status',
      'ecg-1:3:waveform',
    ]);
    expect(read[0]).to.deep.equal({ ...numeric('vit-1', 80), seq: 1 });
    expect(read[5]).to.deep.equal({ ...waveform('ecg-1', 25), seq: 3 });
    expect((await all(journal, 'ecg-1')).map((r) => r.seq)).to.deep.equal([1, 2, 3]);

    const cursor = new Map([['vit-1', 2]]);
    expect((await journal.read(cursor, 2)).map((r) => `${r.deviceId}:${r.seq}`)).to.deep.equal(['ecg-1:1', 'vit-1:3']);

    await journal.ack('vit-1', 2);
    expect((await all(journal)).map((r) => `${r.deviceId}:${r.seq}`)).to.deep.equal(['ecg-1:1', 'vit-1:3', 'ecg-1:2', 'ecg-1:3']);
    const depth = journal.depth();
    expect(depth.devices['vit-1']).to.deep.equal({ pending: 1, lastSeq: 3, acked: 2 });
    expect(depth.devices['ecg-1']).to.deep.equal({ pending: 3, lastSeq: 3, acked: 0 });
    expect(depth.pending).to.equal(4);
    expect(depth.bytes).to.equal((await stat(join(dir, (await segmentFiles(dir))[0]!))).size);
    await journal.close();
  });

  it('is all or nothing: a bad reading in the array takes no seq and writes nothing', async () => {
    const journal = await Journal.open({ dir, fsync: 'never' });
    await journal.append([numeric('vit-1', 80)]);
    const bad = { ...numeric('', 1) };
    let error: unknown;
    try {
      await journal.append([numeric('vit-1', 81), bad]);
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(RangeError);
    expect(journal.lastSeq('vit-1')).to.equal(1);
    await journal.accept([numeric('vit-1', 82)]);
    expect((await all(journal)).map((r) => r.seq)).to.deep.equal([1, 2]);
    await journal.close();
  });

  it('keeps seqs and ack watermarks across close and reopen', async () => {
    let journal = await Journal.open({ dir });
    await journal.append([numeric('vit-1', 80), numeric('vit-1', 81), waveform('ecg-1', 0)]);
    await journal.ack('vit-1', 1);
    await journal.close();

    journal = await Journal.open({ dir });
    expect(journal.lastSeq('vit-1')).to.equal(2);
    expect(journal.ackedSeq('vit-1')).to.equal(1);
    const next = await journal.append([numeric('vit-1', 82), waveform('ecg-1', 25)]);
    expect(next.map((r) => r.seq)).to.deep.equal([3, 2]);
    expect((await all(journal)).map((r) => `${r.deviceId}:${r.seq}`)).to.deep.equal([
      'vit-1:2',
      'ecg-1:1',
      'vit-1:3',
      'ecg-1:2',
    ]);
    await journal.close();
  });

  it('refuses a second open of the same directory and acks beyond the last seq', async () => {
    const journal = await Journal.open({ dir, fsync: 'never' });
    let error: unknown;
    await Journal.open({ dir }).catch((err: unknown) => (error = err));
    expect(String(error)).to.match(/in use by process/);
    await journal.append([numeric('vit-1', 80)]);
    error = undefined;
    await journal.ack('vit-1', 2).catch((err: unknown) => (error = err));
    expect(error).to.be.instanceOf(RangeError);
    await journal.close();
  });

  it('deletes segments once every record in them is acknowledged, and keeps seqs after', async () => {
    let journal = await Journal.open({ dir, fsync: 'never', segmentBytes: 4096 });
    for (let i = 0; i < 60; i++) await journal.append([waveform('ecg-1', i * 25), numeric('vit-1', 60 + i)]);
    const before = await segmentFiles(dir);
    expect(before.length).to.be.greaterThan(4);

    await journal.ack('ecg-1', 60);
    // vit-1 still pending everywhere: nothing can go yet.
    expect(await segmentFiles(dir)).to.deep.equal(before);
    expect(journal.depth().devices['ecg-1']!.pending).to.equal(0);

    await journal.ack('vit-1', 30);
    const middle = await segmentFiles(dir);
    expect(middle.length).to.be.lessThan(before.length);
    expect(middle[middle.length - 1]).to.equal(before[before.length - 1]);
    expect((await all(journal)).map((r) => r.seq)).to.deep.equal(Array.from({ length: 30 }, (_, i) => 31 + i));

    await journal.ack('vit-1', 60);
    expect(await segmentFiles(dir)).to.deep.equal([before[before.length - 1]]);
    expect(journal.depth().pending).to.equal(0);
    expect(journal.stats().segmentsDeleted).to.equal(before.length - 1);
    await journal.close();

    journal = await Journal.open({ dir, fsync: 'never', segmentBytes: 4096 });
    expect(await all(journal)).to.deep.equal([]);
    const [r] = await journal.append([waveform('ecg-1', 0)]);
    expect(r!.seq).to.equal(61);
    await journal.close();
  });

  it('remembers the last seq of a device whose every segment was deleted', async () => {
    let journal = await Journal.open({ dir, fsync: 'never', segmentBytes: 4096 });
    for (let i = 0; i < 40; i++) await journal.append([waveform('ecg-1', i * 25)]);
    for (let i = 0; i < 40; i++) await journal.append([numeric('vit-1', i)]);
    await journal.ack('ecg-1', 40);
    await journal.close();
    const checkpoint = JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8')) as {
      devices: Record<string, { lastSeq: number }>;
    };
    expect(checkpoint.devices['ecg-1']!.lastSeq).to.equal(40);

    journal = await Journal.open({ dir, fsync: 'never', segmentBytes: 4096 });
    expect(journal.depth().devices['ecg-1']!.pending).to.equal(0);
    const [r] = await journal.append([waveform('ecg-1', 0)]);
    expect(r!.seq).to.equal(41);
    await journal.close();
  });
});

describe('journal: fsync policies', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  it("'always' fsyncs before each sequential append resolves", async () => {
    const journal = await Journal.open({ dir, fsync: 'always' });
    for (let i = 0; i < 5; i++) await journal.append([numeric('vit-1', i)]);
    expect(journal.stats().fsyncs).to.be.at.least(5);
    await journal.close();
  });

  it("'interval' resolves concurrent appends together after one group fsync", async () => {
    const journal = await Journal.open({ dir, fsync: 'interval', fsyncIntervalMs: 40 });
    await journal.append([numeric('vit-1', 0)]); // after a quiet spell: synced at once
    const synced = journal.stats().fsyncs;
    // Fsyncs done when each append resolved: none may resolve before the group fsync after it.
    const fsyncsAtResolve: number[] = [];
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        journal.append([numeric('vit-1', i)]).then((r) => {
          fsyncsAtResolve.push(journal.stats().fsyncs);
          return r;
        }),
      ),
    );
    expect(Math.min(...fsyncsAtResolve), 'fsyncs when the first concurrent append resolved').to.be.above(synced);
    expect(results.map(([r]) => r!.seq).sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 2));
    expect(journal.stats().fsyncs).to.be.within(2, 4);
    await journal.close();
  });

  it('reads out only what is durable: a written but unsynced reading waits for the fsync', async () => {
    const journal = await Journal.open({ dir, fsync: 'interval', fsyncIntervalMs: 200 });
    await journal.append([numeric('vit-1', 79)]); // takes the free slot: the next fsync is 200 ms away
    const appended = journal.append([numeric('vit-1', 80)]);
    while (journal.lastSeq('vit-1') === 1) await new Promise((resolve) => setImmediate(resolve));
    expect((await journal.read()).map((r) => r.seq)).to.deep.equal([1]);
    await appended;
    expect((await journal.read()).map((r) => r.seq)).to.deep.equal([1, 2]);
    await journal.close();
  });

  it("'never' leaves fsync to the OS", async () => {
    const journal = await Journal.open({ dir, fsync: 'never' });
    for (let i = 0; i < 5; i++) await journal.append([numeric('vit-1', i)]);
    expect(journal.stats().fsyncs).to.equal(0);
    await journal.close();
  });
});
