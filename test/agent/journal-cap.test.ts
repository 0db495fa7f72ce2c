import { Journal, JournalFullError } from '../../src/agent/journal/index.js';
import type { DroppedRange } from '../../src/agent/journal/index.js';
import type { Reading } from '../../src/devices/reading.js';
import { alarm, numeric, removeDir, segmentFiles, status, tempDir, waveform, expect } from './journal-helpers.js';

const options = { fsync: 'never' as const, segmentBytes: 8192, maxBytes: 65536 };

async function all(journal: Journal): Promise<Reading[]> {
  const out: Reading[] = [];
  for await (const r of journal.pending()) out.push(r);
  return out;
}

function inRanges(ranges: DroppedRange[], seq: number): boolean {
  return ranges.some((r) => seq >= r.from && seq <= r.to);
}

describe('journal: size cap', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  it('drops the oldest waveforms first, keeps every numeric, alarm and status, and reports the gaps', async () => {
    let journal = await Journal.open({ dir, ...options });
    const events: [string, DroppedRange][] = [];
    journal.on('dropped', (id, range) => events.push([id, range]));
    let numerics = 0;
    let others = 0;
    for (let i = 0; i < 200; i++) {
      const batch = [waveform('mon-1', i * 100), waveform('mon-1', i * 100 + 25), numeric('mon-1', i), waveform('ecg-2', i * 25)];
      numerics++;
      if (i % 10 === 0) {
        batch.push(alarm('mon-1', `alarm ${i}`), status('ecg-2', i % 20 === 0));
        others += 2;
      }
      await journal.append(batch);
      expect(journal.depth().bytes).to.be.at.most(options.maxBytes);
    }

    const stats = journal.stats();
    expect(stats.droppedWaveforms).to.be.greaterThan(0);
    expect(stats.compactions).to.be.greaterThan(0);

    const check = async (j: Journal): Promise<void> => {
      const readings = await all(j);
      expect(readings.filter((r) => r.kind === 'numeric')).to.have.length(numerics);
      expect(readings.filter((r) => r.kind === 'alarm' || r.kind === 'status')).to.have.length(others);
      let dropped = 0;
      for (const deviceId of ['mon-1', 'ecg-2']) {
        const ranges = j.droppedRanges(deviceId);
        const present = new Set(readings.filter((r) => r.deviceId === deviceId).map((r) => r.seq));
        const keptWaveforms = readings.filter((r) => r.deviceId === deviceId && r.kind === 'waveform').map((r) => r.seq);
        const missing: number[] = [];
        for (let seq = 1; seq <= j.lastSeq(deviceId); seq++) if (!present.has(seq)) missing.push(seq);
        // Every missing seq is explained by a dropped range; the counts add up.
        for (const seq of missing) expect(inRanges(ranges, seq), `${deviceId} seq ${seq}`).to.equal(true);
        expect(ranges.reduce((n, r) => n + r.count, 0)).to.equal(missing.length);
        // Oldest first: every dropped waveform is older than every kept one.
        expect(Math.max(...missing)).to.be.lessThan(Math.min(...keptWaveforms));
        dropped += missing.length;
      }
      expect(dropped).to.equal(stats.droppedWaveforms);
    };
    await check(journal);
    expect(events.reduce((n, [, r]) => n + r.count, 0)).to.equal(stats.droppedWaveforms);
    await journal.close();

    journal = await Journal.open({ dir, ...options });
    await check(journal);

    // Acknowledging past a gap retires its range.
    const first = journal.droppedRanges('ecg-2')[0]!;
    await journal.ack('ecg-2', first.to);
    expect(journal.droppedRanges('ecg-2').some((r) => r.from === first.from)).to.equal(false);
    await journal.close();
  });

  it('refuses appends, taking nothing, when only numerics, alarms and status are left', async () => {
    const journal = await Journal.open({ dir, ...options });
    for (let i = 0; i < 40; i++) await journal.append([waveform('ecg-1', i * 25)]);
    let error: unknown;
    let accepted = 0;
    for (let i = 0; i < 2000 && !error; i++) {
      try {
        await journal.append([numeric('vit-1', i), alarm('vit-1', `a${i}`)]);
        accepted += 2;
      } catch (err) {
        error = err;
      }
    }
    expect(error).to.be.instanceOf(JournalFullError);
    expect(journal.stats().rejectedFull).to.equal(1);
    expect(journal.stats().droppedWaveforms).to.equal(40);
    expect(journal.lastSeq('vit-1')).to.equal(accepted);
    const readings = await all(journal);
    expect(readings.map((r) => r.seq)).to.deep.equal(Array.from({ length: accepted }, (_, i) => i + 1));
    const ranges = journal.droppedRanges('ecg-1');
    expect(ranges[0]!.from).to.equal(1);
    expect(ranges[ranges.length - 1]!.to).to.equal(40);
    expect(ranges.reduce((n, r) => n + r.count, 0)).to.equal(40);

    // Acknowledging frees room again.
    await journal.ack('vit-1', accepted);
    expect((await segmentFiles(dir)).length).to.equal(1);
    expect((await journal.append([numeric('vit-1', 0)]))[0]!.seq).to.equal(accepted + 1);
    await journal.close();
  });
  it('reads racing compactions never skip a kept reading (no hole but dropped waveforms)', async function () {
    // A read awaiting a segment file while a compaction rewrote it measured the old
    // file's offsets against the new, smaller durable size, stopped that segment early
    // and went on with the next: a hole the uplink then sent as a gap, with the numerics
    // inside it. (Seen once in CI-like runs of uplink-faults; here it showed in about 1
    // of 4 rounds before the fix, so 12 rounds of 8 readers against a compacting writer.)
    this.timeout(60_000);
    const skipped: string[] = [];
    let compactions = 0;
    for (let round = 0; round < 12; round++) {
      const roundDir = await tempDir();
      const journal = await Journal.open({ dir: roundDir, fsync: 'never', segmentBytes: 16_384, maxBytes: 65_536 });
      const kinds = new Map<number, string>();
      let writing = true;
      const reader = async () => {
        while (writing) {
          const got = await journal.read(new Map([['mon-1', 0]]), 1000);
          for (let i = 1; i < got.length; i++) {
            for (let seq = got[i - 1]!.seq + 1; seq < got[i]!.seq; seq++) {
              if (kinds.get(seq) !== 'waveform') skipped.push(`round ${round}: seq ${seq} (${kinds.get(seq)})`);
            }
          }
          await new Promise((resolve) => setImmediate(resolve));
        }
      };
      const readers = Array.from({ length: 8 }, reader);
      for (let i = 0; i < 1500; i++) {
        const batch = i % 5 === 0 ? [waveform('mon-1', i), numeric('mon-1', i)] : [waveform('mon-1', i)];
        for (const r of await journal.append(batch)) kinds.set(r.seq, r.kind);
      }
      writing = false;
      await Promise.all(readers);
      compactions += journal.stats().compactions;
      await journal.close();
      await removeDir(roundDir);
    }
    expect(compactions).to.be.greaterThan(100);
    expect(skipped.slice(0, 5)).to.deep.equal([]);
  });
});
