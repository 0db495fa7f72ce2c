// The journal's delivery ledger (resend dedup): a keyed message is journaled
// once, across reopen, segment deletion, compaction and a torn write, within
// its count and age bounds.

import { open as openFile, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Journal } from '../../src/agent/journal/index.js';
import { scanRecords } from '../../src/agent/journal/format.js';
import type { Reading } from '../../src/devices/reading.js';
import { expect, numeric, removeDir, segmentFiles, tempDir, waveform } from './journal-helpers.js';

async function all(journal: Journal): Promise<Reading[]> {
  const out: Reading[] = [];
  for await (const r of journal.pending()) out.push(r);
  return out;
}

describe('journal: resend dedup (delivery ledger)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir('hoichan-journal-dedup-');
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  it('takes a key once, names the seqs it became, and still knows it after a reopen', async () => {
    let journal = await Journal.open({ dir, fsync: 'always' });
    const first = await journal.appendOnce([numeric('mon-1', 97), numeric('mon-2', 70), numeric('mon-1', 98)], 'MSG1|120|abc');
    expect(first.duplicateOf).to.equal(undefined);
    expect(first.readings.map((r) => `${r.deviceId}:${r.seq}`)).to.deep.equal(['mon-1:1', 'mon-2:1', 'mon-1:2']);
    const again = await journal.appendOnce([numeric('mon-1', 97), numeric('mon-2', 70), numeric('mon-1', 98)], 'MSG1|120|abc');
    expect(again.readings).to.deep.equal([]);
    expect(again.duplicateOf?.ranges).to.deep.equal({ 'mon-1': [1, 2], 'mon-2': [1, 1] });
    expect(await journal.accept([numeric('mon-1', 97)], { dedupKey: 'MSG1|120|abc' })).to.deep.equal({ duplicate: true });
    expect(journal.stats().duplicatesSkipped).to.equal(2);
    await journal.append([numeric('mon-1', 99)]); // unkeyed appends are untouched
    await journal.close();

    journal = await Journal.open({ dir, fsync: 'always' });
    expect(journal.stats().ledgerEntries).to.equal(1);
    expect(journal.taken('MSG1|120|abc')?.ranges).to.deep.equal({ 'mon-1': [1, 2], 'mon-2': [1, 1] });
    expect((await journal.appendOnce([numeric('mon-1', 97)], 'MSG1|120|abc')).duplicateOf).to.not.equal(undefined);
    const other = await journal.appendOnce([numeric('mon-1', 50)], 'MSG2|120|def');
    expect(other.readings.map((r) => r.seq)).to.deep.equal([4]);
    expect((await all(journal)).map((r) => `${r.deviceId}:${r.seq}`)).to.deep.equal(['mon-1:1', 'mon-2:1', 'mon-1:2', 'mon-1:3', 'mon-1:4']);
    await journal.close();
  });

  it('two copies racing in are written once', async () => {
    const journal = await Journal.open({ dir, fsync: 'interval', fsyncIntervalMs: 20 });
    const [a, b] = await Promise.all([journal.appendOnce([numeric('mon-1', 1)], 'K'), journal.appendOnce([numeric('mon-1', 1)], 'K')]);
    expect([a.duplicateOf === undefined, b.duplicateOf === undefined].sort()).to.deep.equal([false, true]);
    expect(journal.lastSeq('mon-1')).to.equal(1);
    await journal.close();
  });

  it('keeps keys in ledger.json when their segments are acknowledged and deleted', async () => {
    let journal = await Journal.open({ dir, fsync: 'never', segmentBytes: 4096 });
    for (let i = 0; i < 60; i++) await journal.appendOnce([numeric('mon-1', i), numeric('mon-1', i + 1)], `M${i}|1|h`);
    expect((await segmentFiles(dir)).length).to.be.greaterThan(2);
    await journal.ack('mon-1', journal.lastSeq('mon-1'));
    expect(await segmentFiles(dir)).to.have.length(1);
    await journal.close();
    journal = await Journal.open({ dir, fsync: 'never', segmentBytes: 4096 });
    expect(journal.taken('M0|1|h')?.ranges).to.deep.equal({ 'mon-1': [1, 2] });
    expect(journal.stats().ledgerEntries).to.equal(60);
    await journal.close();
  });

  it('keeps keys when a size-cap compaction rewrites their segment', async () => {
    const journal = await Journal.open({ dir, fsync: 'never', segmentBytes: 4096, maxBytes: 8192, capLowWater: 0.5 });
    for (let i = 0; i < 30; i++) await journal.appendOnce([waveform('ecg-1', i), numeric('ecg-1', i)], `W${i}|1|h`);
    expect(journal.stats().compactions).to.be.greaterThan(0);
    await journal.close();
    const reopened = await Journal.open({ dir, fsync: 'never', segmentBytes: 4096, maxBytes: 8192, capLowWater: 0.5 });
    expect(reopened.taken('W0|1|h')?.ranges).to.deep.equal({ 'ecg-1': [1, 2] });
    await reopened.close();
  });

  it('forgets the oldest keys past maxEntries and keys older than maxAgeMs', async () => {
    let journal = await Journal.open({ dir, fsync: 'never', dedup: { maxEntries: 3 } });
    for (let i = 0; i < 5; i++) await journal.appendOnce([numeric('mon-1', i)], `C${i}`);
    expect(journal.taken('C0')).to.equal(undefined);
    expect(journal.taken('C1')).to.equal(undefined);
    expect(journal.taken('C4')).to.not.equal(undefined);
    expect((await journal.appendOnce([numeric('mon-1', 0)], 'C0')).duplicateOf).to.equal(undefined); // forgotten: journaled again
    await journal.close();
    journal = await Journal.open({ dir, fsync: 'never', dedup: { maxEntries: 3, maxAgeMs: 0 } });
    expect(journal.stats().ledgerEntries).to.equal(0); // every entry is older than 0 ms by now
    await journal.close();
  });

  it('a ledger record whose batch is not whole before it is ignored at open (journaled again, never lost)', async () => {
    let journal = await Journal.open({ dir, fsync: 'always' });
    await journal.appendOnce([numeric('mon-1', 1), numeric('mon-1', 2)], 'TORN');
    await journal.close();
    // Bit rot inside the batch: the second reading's bytes are damaged, the ledger record after it is whole.
    const [name] = await segmentFiles(dir);
    const path = join(dir, name!);
    const scan = scanRecords(await readFile(path));
    expect(scan.ledger).to.have.length(1);
    const second = scan.records[1]!;
    const handle = await openFile(path, 'r+');
    await handle.write(Buffer.from('XX'), 0, 2, second.offset + second.length - 3);
    await handle.close();
    const size = (await stat(path)).size;
    journal = await Journal.open({ dir, fsync: 'always' });
    expect(journal.stats().corruptRegions).to.equal(1);
    expect(journal.stats().ledgerRecordsIgnored).to.equal(1);
    expect(journal.taken('TORN')).to.equal(undefined);
    expect((await stat(path)).size).to.equal(size);
    await journal.close();
  });
});
