// One journal record = one Reading. Layout (little-endian):
//
//   0  u32  length      whole record in bytes, header included
//   4  u32  crc32c      over bytes [8, length) then bytes [0, 4): payload and length
//   8  u8×3 magic       'H' 'J' version(1): lets a scan find the next record after bit rot
//  11  u8   kind        0 numeric, 1 waveform, 2 alarm, 3 status
//  12  f64  seq         exact integer up to 2^53 (u32 would wrap in ~200 days at 240 readings/s)
//  20  u8   idLength    deviceId byte length
//  21  ...  deviceId    UTF-8
//   .. ...  body        JSON of the ReadingBody without deviceId and seq
//
// deviceId, seq and kind live in the binary header so recovery, cursors and
// compaction never parse JSON.
//
// Kind 4 is not a reading but a delivery-ledger record (docs/JOURNAL.md,
// "Resend dedup"): written right after the readings of one device message in
// the same write, it says "the message with this key was taken, as these
// seqs". Same frame and checksum; the seq field holds the time it was taken
// (ms since the epoch), the id field the message key, the body its seq ranges.

//
// Sealed records (journal.encryptionKeyFile set): version byte 2 instead of 1,
// same header, and the body is keyId u32 | nonce 12 | AES-256-GCM ciphertext |
// tag 16, with the header bytes [8, 21+n) (magic, kind, seq, deviceId) as
// additional data, so a body cannot be moved under another seq or device. The
// CRC covers the sealed bytes: recovery, resync and compaction work without
// the key. Ledger records stay version 1 (control ids and seq ranges only).

import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { ReadingKind, Reading } from '../../devices/reading.js';
import { crc32c } from './crc32c.js';

export const MAGIC = Buffer.from([0x48, 0x4a, 0x01]);
const SEALED_VERSION = 0x02;
const KEY_ID_BYTES = 4;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const SEAL_OVERHEAD = KEY_ID_BYTES + NONCE_BYTES + TAG_BYTES;

/** An AES-256 key and its id (the first 4 bytes of its SHA-256), stored in every sealed record. */
export interface RecordCipher {
  key: Buffer;
  keyId: number;
}

export function recordCipher(key: Buffer): RecordCipher {
  if (key.length !== 32) throw new RangeError('a journal encryption key is 32 bytes (AES-256)');
  return { key, keyId: createHash('sha256').update(key).digest().readUInt32BE(0) };
}

/** Hex form of a key id, as logs and errors name it. */
export function keyIdText(keyId: number): string {
  return keyId.toString(16).padStart(8, '0');
}

export class JournalKeyError extends Error {}
export const HEADER_BYTES = 21;
/** Smallest record: header, a 1-byte deviceId and '{}'. */
export const MIN_RECORD_BYTES = HEADER_BYTES + 1 + 2;
/** Larger lengths are treated as corruption, not trusted to size a read. */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;
export const MAX_DEVICE_ID_BYTES = 255;

const KINDS: readonly ReadingKind[] = ['numeric', 'waveform', 'alarm', 'status'];
const KIND_CODE: Record<ReadingKind, number> = { numeric: 0, waveform: 1, alarm: 2, status: 3 };
const LEDGER_KIND = 4;
export const MAX_LEDGER_KEY_BYTES = 255;

/** Per device, the first and last seq a device message was journaled as. */
export type SeqRanges = Record<string, [from: number, to: number]>;

/** Where one valid delivery-ledger record sits in a buffer. */
export interface LedgerRef {
  offset: number;
  length: number;
  key: string;
  /** When the message was taken, ms since the epoch. */
  at: number;
}

export interface LedgerEntry {
  key: string;
  at: number;
  ranges: SeqRanges;
}

/** Where one valid record sits in a buffer, with the header fields decoded. */
export interface RecordRef {
  offset: number;
  length: number;
  deviceId: string;
  seq: number;
  kind: ReadingKind;
  /** Set for a sealed (encrypted) record: the id of the key it needs. */
  keyId?: number;
}

export function encodeRecord(reading: Reading, cipher?: RecordCipher): Buffer {
  const { deviceId, seq, late: _late, ...body } = reading;
  const id = Buffer.from(deviceId, 'utf8');
  if (id.length === 0 || id.length > MAX_DEVICE_ID_BYTES) {
    throw new RangeError(`deviceId must be 1..${MAX_DEVICE_ID_BYTES} UTF-8 bytes`);
  }
  const json = Buffer.from(JSON.stringify(body), 'utf8');
  const bodyBytes = cipher ? SEAL_OVERHEAD + json.length : json.length;
  const length = HEADER_BYTES + id.length + bodyBytes;
  if (length > MAX_RECORD_BYTES) throw new RangeError(`reading encodes to ${length} bytes, over ${MAX_RECORD_BYTES}`);
  const buf = Buffer.allocUnsafe(length);
  buf.writeUInt32LE(length, 0);
  MAGIC.copy(buf, 8);
  buf[11] = KIND_CODE[reading.kind];
  buf.writeDoubleLE(seq, 12);
  buf[20] = id.length;
  id.copy(buf, HEADER_BYTES);
  const bodyStart = HEADER_BYTES + id.length;
  if (cipher) {
    buf[10] = SEALED_VERSION;
    // A random 96-bit nonce per record: ~2^32 records per key before the collision
    // risk matters, far beyond a site journal's life under one key.
    const nonce = randomBytes(NONCE_BYTES);
    buf.writeUInt32LE(cipher.keyId, bodyStart);
    nonce.copy(buf, bodyStart + KEY_ID_BYTES);
    const gcm = createCipheriv('aes-256-gcm', cipher.key, nonce);
    gcm.setAAD(buf.subarray(8, bodyStart));
    const sealed = Buffer.concat([gcm.update(json), gcm.final()]);
    sealed.copy(buf, bodyStart + KEY_ID_BYTES + NONCE_BYTES);
    gcm.getAuthTag().copy(buf, length - TAG_BYTES);
  } else {
    json.copy(buf, bodyStart);
  }
  buf.writeUInt32LE(checksum(buf, 0, length), 4);
  return buf;
}

export function encodeLedgerRecord(entry: LedgerEntry): Buffer {
  const key = Buffer.from(entry.key, 'utf8');
  if (key.length === 0 || key.length > MAX_LEDGER_KEY_BYTES) throw new RangeError(`ledger key must be 1..${MAX_LEDGER_KEY_BYTES} UTF-8 bytes`);
  if (!Number.isSafeInteger(entry.at) || entry.at < 1) throw new RangeError('ledger time must be a positive integer (ms)');
  const json = Buffer.from(JSON.stringify({ ranges: entry.ranges }), 'utf8');
  const length = HEADER_BYTES + key.length + json.length;
  if (length > MAX_RECORD_BYTES) throw new RangeError(`ledger record encodes to ${length} bytes, over ${MAX_RECORD_BYTES}`);
  const buf = Buffer.allocUnsafe(length);
  buf.writeUInt32LE(length, 0);
  MAGIC.copy(buf, 8);
  buf[11] = LEDGER_KIND;
  buf.writeDoubleLE(entry.at, 12);
  buf[20] = key.length;
  key.copy(buf, HEADER_BYTES);
  json.copy(buf, HEADER_BYTES + key.length);
  buf.writeUInt32LE(checksum(buf, 0, length), 4);
  return buf;
}

/** The seq ranges of a ledger record; throws if its body is not what encodeLedgerRecord wrote. */
export function decodeLedgerEntry(buf: Buffer, ref: LedgerRef): LedgerEntry {
  const bodyStart = ref.offset + HEADER_BYTES + buf[ref.offset + 20]!;
  const body = JSON.parse(buf.toString('utf8', bodyStart, ref.offset + ref.length)) as { ranges?: unknown };
  if (!isSeqRanges(body.ranges)) throw new Error('ledger record without valid seq ranges');
  return { key: ref.key, at: ref.at, ranges: body.ranges };
}

export function isSeqRanges(value: unknown): value is SeqRanges {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const entries = Object.entries(value);
  return entries.length > 0 && entries.every(([, r]) => Array.isArray(r) && r.length === 2 && Number.isSafeInteger(r[0]) && Number.isSafeInteger(r[1]) && r[0] >= 1 && r[1] >= r[0]);
}

function checksum(buf: Buffer, offset: number, length: number): number {
  return crc32c(buf, offset, offset + 4, crc32c(buf, offset + 8, offset + length));
}

/** A whole, checksummed record of either type at offset, else undefined. */
function tryFrame(buf: Buffer, offset: number, end: number): RecordRef | LedgerRef | undefined {
  if (end - offset < HEADER_BYTES) return undefined;
  const length = buf.readUInt32LE(offset);
  if (length < MIN_RECORD_BYTES || length > MAX_RECORD_BYTES || length > end - offset) return undefined;
  const version = buf[offset + 10];
  if (buf[offset + 8] !== MAGIC[0] || buf[offset + 9] !== MAGIC[1] || (version !== MAGIC[2] && version !== SEALED_VERSION)) return undefined;
  if (buf.readUInt32LE(offset + 4) !== checksum(buf, offset, length)) return undefined;
  if (buf[offset + 11] === LEDGER_KIND) {
    if (version !== MAGIC[2]) return undefined;
    const keyLength = buf[offset + 20]!;
    const at = buf.readDoubleLE(offset + 12);
    if (keyLength === 0 || HEADER_BYTES + keyLength + 2 > length || !Number.isSafeInteger(at) || at < 1) return undefined;
    return { offset, length, key: buf.toString('utf8', offset + HEADER_BYTES, offset + HEADER_BYTES + keyLength), at };
  }
  const kind = KINDS[buf[offset + 11]!];
  const idLength = buf[offset + 20]!;
  const seq = buf.readDoubleLE(offset + 12);
  // A valid checksum over a record we did not write (a future version) is still not data we understand.
  const sealed = version === SEALED_VERSION;
  if (!kind || idLength === 0 || HEADER_BYTES + idLength + 2 + (sealed ? SEAL_OVERHEAD : 0) > length || !Number.isSafeInteger(seq) || seq < 1) {
    return undefined;
  }
  const deviceId = buf.toString('utf8', offset + HEADER_BYTES, offset + HEADER_BYTES + idLength);
  if (!sealed) return { offset, length, deviceId, seq, kind };
  return { offset, length, deviceId, seq, kind, keyId: buf.readUInt32LE(offset + HEADER_BYTES + idLength) };
}

/** Throws JournalKeyError when a sealed record's key is absent or another, or its tag fails. */
export function decodeReading(buf: Buffer, ref: RecordRef, cipher?: RecordCipher): Reading {
  const bodyStart = ref.offset + HEADER_BYTES + buf[ref.offset + 20]!;
  const end = ref.offset + ref.length;
  let json: string;
  if (ref.keyId === undefined) {
    json = buf.toString('utf8', bodyStart, end);
  } else {
    if (!cipher) throw new JournalKeyError(`journal record ${ref.deviceId}#${ref.seq} is encrypted (key ${keyIdText(ref.keyId)}) and no journal.encryptionKeyFile is set`);
    if (cipher.keyId !== ref.keyId) throw new JournalKeyError(`journal record ${ref.deviceId}#${ref.seq} is encrypted with key ${keyIdText(ref.keyId)}, not the configured ${keyIdText(cipher.keyId)}`);
    const nonce = buf.subarray(bodyStart + KEY_ID_BYTES, bodyStart + KEY_ID_BYTES + NONCE_BYTES);
    const gcm = createDecipheriv('aes-256-gcm', cipher.key, nonce);
    gcm.setAAD(buf.subarray(ref.offset + 8, bodyStart));
    gcm.setAuthTag(buf.subarray(end - TAG_BYTES, end));
    try {
      json = Buffer.concat([gcm.update(buf.subarray(bodyStart + KEY_ID_BYTES + NONCE_BYTES, end - TAG_BYTES)), gcm.final()]).toString('utf8');
    } catch {
      throw new JournalKeyError(`journal record ${ref.deviceId}#${ref.seq} failed authentication (key ${keyIdText(ref.keyId)})`);
    }
  }
  const body = JSON.parse(json) as Record<string, unknown>;
  return { deviceId: ref.deviceId, seq: ref.seq, ...body } as Reading;
}

export interface CorruptRegion {
  offset: number;
  bytes: number;
}

/** A ledger record found by a scan, with what came right before it. */
export interface ScannedLedgerRef extends LedgerRef {
  /** records.length when it was found: the readings before it are records[recordIndex - n, recordIndex). */
  recordIndex: number;
  /** Reading records immediately before it, with no corrupt span or other ledger record between. */
  run: number;
}

export interface ScanResult {
  /** Reading records only. */
  records: RecordRef[];
  ledger: ScannedLedgerRef[];
  /** Bad bytes followed by good records (bit rot): skipped, never read as data. */
  corrupt: CorruptRegion[];
  /** End of the last good record; bytes after it are a torn or garbage tail. */
  validEnd: number;
}

/**
 * Walks records from start to end. On a bad record it searches forward for
 * the next position holding a whole record with a good checksum; if one
 * exists the bad span is reported as corrupt, otherwise everything from the
 * bad record on is the tail (validEnd).
 */
export function scanRecords(buf: Buffer, start = 0, end = buf.length): ScanResult {
  const records: RecordRef[] = [];
  const ledger: ScannedLedgerRef[] = [];
  const corrupt: CorruptRegion[] = [];
  let pos = start;
  let run = 0;
  while (pos < end) {
    const ref = tryFrame(buf, pos, end);
    if (ref) {
      if ('deviceId' in ref) {
        records.push(ref);
        run++;
      } else {
        ledger.push({ ...ref, recordIndex: records.length, run });
        run = 0;
      }
      pos += ref.length;
      continue;
    }
    const next = resync(buf, pos + 1, end);
    if (next < 0) break;
    corrupt.push({ offset: pos, bytes: next - pos });
    pos = next;
    run = 0;
  }
  return { records, ledger, corrupt, validEnd: pos };
}

/** 'HJ': both record versions start with it; tryFrame checks the rest. */
const MAGIC_PREFIX = MAGIC.subarray(0, 2);

function resync(buf: Buffer, from: number, end: number): number {
  let search = from + 8;
  for (;;) {
    const hit = buf.indexOf(MAGIC_PREFIX, search);
    if (hit < 0 || hit >= end) return -1;
    const candidate = hit - 8;
    if (candidate >= from && tryFrame(buf, candidate, end)) return candidate;
    search = hit + 1;
  }
}
