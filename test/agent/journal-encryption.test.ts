// journal encryptionKey / journal.encryptionKeyFile: reading bodies sealed at
// rest (AES-256-GCM), what a wrong or missing key does, tampering, compaction
// and the key file's checks. The kill -9 recovery with a key is in
// journal-recovery.test.ts.

import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Journal, JournalKeyError, readJournalKeyFile } from '../../src/agent/journal/index.js';
import { scanRecords } from '../../src/agent/journal/format.js';
import { crc32c } from '../../src/agent/journal/crc32c.js';
import type { Reading } from '../../src/devices/reading.js';
import { alarm, expect, numeric, removeDir, segmentFiles, tempDir, waveform } from './journal-helpers.js';

const KEY = Buffer.from('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'hex');
const OTHER_KEY = Buffer.alloc(32, 7);

async function all(journal: Journal): Promise<Reading[]> {
  const out: Reading[] = [];
  for await (const r of journal.pending()) out.push(r);
  return out;
}

async function segmentBytes(dir: string): Promise<Buffer> {
  return Buffer.concat(await Promise.all((await segmentFiles(dir)).map((f) => readFile(join(dir, f)))));
}

describe('journal: encryption at rest', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  it('writes no reading value, code or alarm text in clear, and reads them back exactly', async () => {
    const journal = await Journal.open({ dir, fsync: 'never', encryptionKey: KEY });
    const written = await journal.append([numeric('bed-7', 187), waveform('bed-7', 3), alarm('bed-7', 'VF ASYSTOLE CHECK PATIENT')]);
    await journal.appendOnce([numeric('bed-7', 42)], 'MSG-1|100|abc');
    await journal.close();
    const raw = await segmentBytes(dir);
    for (const needle of ['187', 'MDC_ECG_HEART_RATE', 'VF ASYSTOLE', '"samples"', 'mm[Hg]', '/min']) expect(raw.includes(needle), needle).to.equal(false);
    const reopened = await Journal.open({ dir, fsync: 'never', encryptionKey: KEY });
    const readings = await all(reopened);
    expect(readings.slice(0, 3)).to.deep.equal(written);
    expect(readings[3]).to.include({ deviceId: 'bed-7', seq: 4, value: 42 });
    // The resend-dedup ledger survives too (its records hold no reading values).
    expect(reopened.taken('MSG-1|100|abc')?.ranges).to.deep.equal({ 'bed-7': [4, 4] });
    await reopened.close();
  });

  it('refuses to open with unsent sealed readings and no key, or another key, saying which key', async () => {
    const journal = await Journal.open({ dir, fsync: 'never', encryptionKey: KEY });
    await journal.append([numeric('bed-7', 90)]);
    await journal.close();
    let err = await Journal.open({ dir, fsync: 'never' }).then(() => undefined, (e: Error) => e);
    expect(err).to.be.instanceOf(JournalKeyError);
    expect(err!.message).to.match(/holds unsent readings encrypted with key [0-9a-f]{8}: set journal.encryptionKeyFile/);
    err = await Journal.open({ dir, fsync: 'never', encryptionKey: OTHER_KEY }).then(() => undefined, (e: Error) => e);
    expect(err).to.be.instanceOf(JournalKeyError);
    expect(err!.message).to.match(/not the configured key/);
    // The lock was released: the right key opens it.
    const again = await Journal.open({ dir, fsync: 'never', encryptionKey: KEY });
    await again.ack('bed-7', 1);
    await again.close();
    // Once sent (acked), sealed readings no longer hold the journal hostage to the old key.
    const rotated = await Journal.open({ dir, fsync: 'never', encryptionKey: OTHER_KEY });
    await rotated.append([numeric('bed-7', 91)]);
    expect((await all(rotated)).map((r) => (r.kind === 'numeric' ? r.value : undefined))).to.deep.equal([91]);
    await rotated.close();
  });

  it('keeps plaintext records from before the key readable beside sealed ones', async () => {
    const plain = await Journal.open({ dir, fsync: 'never' });
    await plain.append([numeric('bed-7', 60)]);
    await plain.close();
    const sealed = await Journal.open({ dir, fsync: 'never', encryptionKey: KEY });
    await sealed.append([numeric('bed-7', 61)]);
    expect((await all(sealed)).map((r) => [r.seq, r.kind === 'numeric' ? r.value : undefined])).to.deep.equal([[1, 60], [2, 61]]);
    await sealed.close();
  });

  it('rejects a sealed body that was altered (and re-checksummed), with the record named', async () => {
    const journal = await Journal.open({ dir, fsync: 'never', encryptionKey: KEY });
    await journal.append([numeric('bed-7', 72)]);
    await journal.close();
    const [file] = await segmentFiles(dir);
    const path = join(dir, file!);
    const buf = await readFile(path);
    const [ref] = scanRecords(buf).records;
    buf[ref!.offset + ref!.length - 20]! ^= 0x01; // a ciphertext byte
    // Recompute the CRC as an attacker would: only the GCM tag can tell.
    const crc = crc32c(buf, ref!.offset, ref!.offset + 4, crc32c(buf, ref!.offset + 8, ref!.offset + ref!.length));
    buf.writeUInt32LE(crc, ref!.offset + 4);
    await writeFile(path, buf);
    const reopened = await Journal.open({ dir, fsync: 'never', encryptionKey: KEY });
    const err = await all(reopened).then(() => undefined, (e: Error) => e);
    expect(err).to.be.instanceOf(JournalKeyError);
    expect(err!.message).to.equal(`journal record bed-7#1 failed authentication (key ${err!.message.match(/key ([0-9a-f]{8})/)![1]})`);
    await reopened.close();
  });

  it('compacts under the size cap with sealed records and reads every numeric back', async () => {
    const journal = await Journal.open({ dir, fsync: 'never', segmentBytes: 8192, maxBytes: 65536, encryptionKey: KEY });
    for (let i = 0; i < 200; i++) await journal.append([waveform('mon-1', i * 25), numeric('mon-1', 1000 + i)]);
    expect(journal.stats().compactions).to.be.greaterThan(0);
    expect(journal.stats().droppedWaveforms).to.be.greaterThan(0);
    await journal.close();
    const reopened = await Journal.open({ dir, fsync: 'never', segmentBytes: 8192, maxBytes: 65536, encryptionKey: KEY });
    const values = (await all(reopened)).map((r) => (r.kind === 'numeric' ? r.value : undefined)).filter((v) => v !== undefined);
    expect(values).to.deep.equal(Array.from({ length: 200 }, (_, i) => 1000 + i));
    expect(reopened.stats().corruptRegions).to.equal(0);
    await reopened.close();
    expect((await segmentBytes(dir)).includes('MDC_')).to.equal(false);
  });

  it('reads a key file in hex, base64 or raw form, owner-only', async () => {
    const hex = join(dir, 'key.hex');
    await writeFile(hex, `${KEY.toString('hex')}\n`, { mode: 0o600 });
    expect(await readJournalKeyFile(hex)).to.deep.equal(KEY);
    const b64 = join(dir, 'key.b64');
    await writeFile(b64, KEY.toString('base64'), { mode: 0o600 });
    expect(await readJournalKeyFile(b64)).to.deep.equal(KEY);
    const raw = join(dir, 'key.bin');
    await writeFile(raw, KEY, { mode: 0o600 });
    expect(await readJournalKeyFile(raw)).to.deep.equal(KEY);
    await chmod(hex, 0o644);
    await readJournalKeyFile(hex).then(() => expect.fail('a world-readable key was taken'), (e: Error) => expect(e.message).to.match(/mode 644 lets other accounts read it; chmod 600 it/));
    const short = join(dir, 'short');
    await writeFile(short, 'abcd', { mode: 0o600 });
    await readJournalKeyFile(short).then(() => expect.fail('a short key was taken'), (e: Error) => expect(e.message).to.match(/expected 32 bytes, 64 hex digits or base64/));
    await readJournalKeyFile(join(dir, 'absent')).then(() => expect.fail('no file'), (e: Error) => expect(e.message).to.match(/no such file/));
  });
});
