// The site agent's durable journal: every reading is written here before the
// device is acknowledged, and kept until the hub acknowledges it.
// docs/JOURNAL.md describes the format, the fsync policies and recovery.

import { EventEmitter } from 'node:events';
import { mkdir, open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { AcceptOptions, AcceptResult, DeviceReadingBody, ReadingSink } from '../../devices/driver.js';
import type { Reading, ReadingKind } from '../../devices/reading.js';
import { createLogger, type Logger } from '../../common/logger.js';
import { inRanges, insertRange, nextCompactionCandidate, planCompaction } from './cap.js';
import { emptyCheckpoint, readCheckpoint, writeCheckpoint, type Checkpoint, type DroppedRange } from './checkpoint.js';
import { GroupCommit, type FsyncPolicy } from './durability.js';
import { JournalClosedError, JournalFullError } from './errors.js';
import { decodeLedgerEntry, decodeReading, encodeLedgerRecord, encodeRecord, JournalKeyError, keyIdText, recordCipher, scanRecords, type LedgerEntry, type RecordCipher, type RecordRef, type SeqRanges } from './format.js';
import { JOURNAL_DIR_MODE, JOURNAL_FILE_MODE, removeQuietly, restrictModes, syncDir, writeFully } from './fsutil.js';
import { batchMatches, DEFAULT_LEDGER_BOUNDS, DeliveryLedger, readLedgerSnapshot, writeLedgerSnapshot, type LedgerBounds } from './ledger.js';
import { acquireLock } from './lock.js';
import { listSegmentFiles, readSegment, SegmentMeta, SegmentView } from './segment.js';

export interface JournalOptions {
  /** Directory holding the segments, checkpoint.json and LOCK; created if missing. */
  dir: string;
  /** Default 'interval'. See docs/JOURNAL.md for what each policy puts at risk. */
  fsync?: FsyncPolicy;
  /** Group-commit period for fsync 'interval'. Default 100. */
  fsyncIntervalMs?: number;
  /** A segment is sealed once it would grow past this. Default 8 MiB. */
  segmentBytes?: number;
  /** Size cap over all segments. Default 2 GiB. */
  maxBytes?: number;
  /** Once over the cap, compaction goes on until the journal is at this fraction of maxBytes. Default 0.9. */
  capLowWater?: number;
  /** Bounds of the resend-dedup ledger. Default 10 000 messages, 1 hour. */
  dedup?: Partial<LedgerBounds>;
  /**
   * 32-byte AES-256 key: reading bodies are written sealed (AES-256-GCM, a
   * nonce per record, the key id in each record). Records written before the
   * key was set stay readable; sealed ones need this same key.
   */
  encryptionKey?: Buffer;
  logger?: Logger;
}

/** What appendOnce() did. */
export interface AppendOnceResult {
  /** The readings as journaled; [] for a duplicate. */
  readings: Reading[];
  /** Set when the key was already taken: the entry that took it (nothing was written). */
  duplicateOf?: LedgerEntry;
}

export interface DeviceDepth {
  /** Readings journaled and not yet acknowledged (dropped waveforms excluded). */
  pending: number;
  lastSeq: number;
  acked: number;
}

export interface JournalDepth {
  devices: Record<string, DeviceDepth>;
  pending: number;
  /** Bytes of all segment files. */
  bytes: number;
  segments: number;
}

/** Counters since open (droppedRanges() is the persistent record of drops). */
export interface JournalStats {
  appended: number;
  droppedWaveforms: number;
  compactions: number;
  segmentsDeleted: number;
  rejectedFull: number;
  tornTails: number;
  tornBytes: number;
  corruptRegions: number;
  corruptBytes: number;
  fsyncs: number;
  /** Keyed appends answered from the delivery ledger (resends), since open. */
  duplicatesSkipped: number;
  /** Messages the delivery ledger remembers now. */
  ledgerEntries: number;
  /** Ledger records ignored at open because their batch was not whole before them. */
  ledgerRecordsIgnored: number;
}

export interface JournalEvents {
  /** The size cap dropped waveform readings of a device. */
  dropped: [deviceId: string, range: DroppedRange];
}

interface DeviceState {
  lastSeq: number;
  acked: number;
  dropped: DroppedRange[];
}

const KINDS: ReadonlySet<ReadingKind> = new Set(['numeric', 'waveform', 'alarm', 'status']);
const SEALED_VIEWS_CACHED = 3;

export class Journal extends EventEmitter<JournalEvents> implements ReadingSink {
  readonly #dir: string;
  readonly #segmentBytes: number;
  readonly #maxBytes: number;
  readonly #lowWater: number;
  readonly #log: Logger;
  readonly #commit: GroupCommit;
  readonly #policy: FsyncPolicy;
  readonly #devices = new Map<string, DeviceState>();
  readonly #ledger: DeliveryLedger;
  /** In log order; the last one is the active segment. */
  #segments: SegmentMeta[] = [];
  #cachedViews: SegmentMeta[] = [];
  #handle!: FileHandle;
  #nextIndex = 0;
  #bytes = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #ackWrite: Promise<void> | undefined;
  #releaseLock: (() => Promise<void>) | undefined;
  #closed = false;
  #failure: Error | undefined;
  readonly #stats: Omit<JournalStats, 'fsyncs' | 'ledgerEntries'> = {
    appended: 0,
    droppedWaveforms: 0,
    compactions: 0,
    segmentsDeleted: 0,
    rejectedFull: 0,
    tornTails: 0,
    tornBytes: 0,
    corruptRegions: 0,
    corruptBytes: 0,
    duplicatesSkipped: 0,
    ledgerRecordsIgnored: 0,
  };

  readonly #cipher: RecordCipher | undefined;

  private constructor(options: JournalOptions) {
    super();
    this.#dir = options.dir;
    this.#segmentBytes = options.segmentBytes ?? 8 * 1024 * 1024;
    this.#cipher = options.encryptionKey ? recordCipher(options.encryptionKey) : undefined;
    this.#maxBytes = options.maxBytes ?? 2 * 1024 * 1024 * 1024;
    this.#lowWater = options.capLowWater ?? 0.9;
    const policy = options.fsync ?? 'interval';
    const intervalMs = options.fsyncIntervalMs ?? 100;
    if (!['always', 'interval', 'never'].includes(policy)) throw new RangeError(`unknown fsync policy ${policy}`);
    if (!(intervalMs > 0)) throw new RangeError('fsyncIntervalMs must be > 0');
    if (!(this.#segmentBytes >= 4096)) throw new RangeError('segmentBytes must be >= 4096');
    if (!(this.#maxBytes >= 2 * this.#segmentBytes)) throw new RangeError('maxBytes must be >= 2 * segmentBytes');
    if (!(this.#lowWater > 0 && this.#lowWater <= 1)) throw new RangeError('capLowWater must be in (0, 1]');
    this.#ledger = new DeliveryLedger({ ...DEFAULT_LEDGER_BOUNDS, ...options.dedup });
    this.#log = options.logger ?? createLogger('journal');
    this.#policy = policy;
    this.#commit = new GroupCommit(policy, intervalMs, () => this.#syncActive());
  }

  /** Opens (creating if needed) and recovers the journal in options.dir. */
  static async open(options: JournalOptions): Promise<Journal> {
    const journal = new Journal(options);
    await journal.#recover();
    return journal;
  }

  /**
   * Assigns seqs, writes, and resolves once the readings are durable under the
   * fsync policy. All or nothing: on rejection no reading of the array was
   * taken and no seq was consumed.
   */
  async append(readings: DeviceReadingBody[]): Promise<Reading[]> {
    return (await this.#append(readings, undefined)).readings;
  }

  /**
   * append() for the readings of one device message named by key (HL7:
   * control id and content hash). If the delivery ledger already holds key,
   * nothing is written and the result names the entry; otherwise the readings
   * and a ledger record for key go to disk in ONE write and ONE fsync, so
   * after any crash both are there or neither (a torn write leaves the ledger
   * record, written last, missing: the resend is then journaled again, a
   * duplicate rather than a loss). Either way it resolves only once durable:
   * a resend that arrives while the first copy waits for its fsync must not
   * be acknowledged before that copy is on disk.
   */
  async appendOnce(readings: DeviceReadingBody[], key: string): Promise<AppendOnceResult> {
    return this.#append(readings, key);
  }

  /** ReadingSink: drivers acknowledge their device only after this resolves. */
  async accept(readings: DeviceReadingBody[], options?: AcceptOptions): Promise<AcceptResult> {
    if (options?.dedupKey === undefined) {
      await this.append(readings);
      return { duplicate: false };
    }
    const result = await this.appendOnce(readings, options.dedupKey);
    return { duplicate: result.duplicateOf !== undefined };
  }

  async #append(readings: DeviceReadingBody[], key: string | undefined): Promise<AppendOnceResult> {
    this.#assertUsable();
    if (readings.length === 0) return { readings: [] };
    const result = await this.#exclusive(() => this.#write(readings, key));
    try {
      await this.#commit.durable();
    } catch (err) {
      // After a failed fsync the kernel may have dropped the dirty pages: stop taking readings.
      this.#fail(err as Error, 'fsync failed');
      throw err;
    }
    return result;
  }

  /** The ledger entry for key, if the journal has taken a message with it (within the bounds). */
  taken(key: string): LedgerEntry | undefined {
    const entry = this.#ledger.get(key, Date.now());
    return entry && { ...entry, ranges: { ...entry.ranges } };
  }

  /**
   * Un-acknowledged readings in log order (seq order per device), at most
   * limit, with seq > after.get(deviceId) (and > the ack watermark).
   * Dropped waveforms are skipped: droppedRanges() explains the seq gaps.
   */
  async read(after?: ReadonlyMap<string, number>, limit = 1000): Promise<Reading[]> {
    return this.#read(after, limit, undefined);
  }

  /** Every un-acknowledged reading (of one device if given), read in batches. */
  async *pending(deviceId?: string, batch = 1000): AsyncGenerator<Reading> {
    const after = new Map<string, number>();
    for (;;) {
      const readings = await this.#read(after, batch, deviceId);
      if (readings.length === 0) return;
      for (const r of readings) {
        after.set(r.deviceId, r.seq);
        yield r;
      }
    }
  }

  /**
   * The hub has everything of deviceId up to seq. Resolves once the
   * watermark is on disk; segments wholly acknowledged are then deleted.
   */
  async ack(deviceId: string, seq: number): Promise<void> {
    this.#assertUsable();
    const device = this.#devices.get(deviceId);
    if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError('seq must be a non-negative integer');
    if (!device || seq > device.lastSeq) {
      throw new RangeError(`ack of seq ${seq} for ${deviceId} beyond the last seq assigned (${device?.lastSeq ?? 0})`);
    }
    if (seq <= device.acked) return;
    device.acked = seq;
    // Once acknowledged past a gap, the hub has seen it; the range is no longer news.
    device.dropped = device.dropped.filter((r) => r.to > seq);
    await this.#persistAcks();
  }

  depth(): JournalDepth {
    const devices: Record<string, DeviceDepth> = {};
    let total = 0;
    for (const [deviceId, d] of this.#devices) {
      let pending = 0;
      for (const meta of this.#segments) pending += meta.countAfter(deviceId, d.acked);
      devices[deviceId] = { pending, lastSeq: d.lastSeq, acked: d.acked };
      total += pending;
    }
    return { devices, pending: total, bytes: this.#bytes, segments: this.#segments.length };
  }

  stats(): JournalStats {
    return { ...this.#stats, fsyncs: this.#commit.syncs, ledgerEntries: this.#ledger.size };
  }

  /** Seq spans whose waveforms the size cap dropped and the hub has not yet acknowledged past. */
  droppedRanges(deviceId: string): DroppedRange[] {
    return (this.#devices.get(deviceId)?.dropped ?? []).map((r) => ({ ...r }));
  }

  lastSeq(deviceId: string): number {
    return this.#devices.get(deviceId)?.lastSeq ?? 0;
  }

  ackedSeq(deviceId: string): number {
    return this.#devices.get(deviceId)?.acked ?? 0;
  }

  get dir(): string {
    return this.#dir;
  }

  /** Waits for admitted work, fsyncs, writes the checkpoint and releases the directory. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue.catch(() => undefined);
    await this.#exclusive(async () => {
      try {
        if (!this.#failure) {
          await this.#commit.flush();
          await this.#writeCheckpoint();
        }
      } finally {
        await this.#handle.close().catch(() => undefined);
        await this.#releaseLock?.();
      }
    });
    this.#log.info({ bytes: this.#bytes, segments: this.#segments.length }, 'journal closed');
  }

  // ---- recovery ----------------------------------------------------------

  async #recover(): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: JOURNAL_DIR_MODE });
    // A journal made by an older agent (or copied in) may be readable by other accounts.
    const loosened = await restrictModes(this.#dir);
    if (loosened.length > 0) this.#log.warn({ entries: loosened.length }, 'journal was readable by other accounts: set to 0700/0600');
    this.#releaseLock = await acquireLock(this.#dir);
    try {
      await this.#loadCheckpoint();
      await this.#loadLedgerSnapshot();
      await this.#loadSegments();
      await this.#openActive();
    } catch (err) {
      await this.#releaseLock();
      throw err;
    }
    const depth = this.depth();
    this.#log.info(
      { segments: this.#segments.length, bytes: this.#bytes, pending: depth.pending, devices: this.#devices.size },
      'journal opened',
    );
  }

  async #loadCheckpoint(): Promise<void> {
    let checkpoint: Checkpoint | undefined;
    try {
      checkpoint = await readCheckpoint(this.#dir);
    } catch (err) {
      // Renames are atomic, so this is damage from outside; the log alone still gives seqs.
      this.#log.error({ err }, 'checkpoint unreadable: ack watermarks restart at 0, the hub drops the duplicates');
    }
    for (const [deviceId, c] of Object.entries(checkpoint?.devices ?? {})) {
      const dropped = (c.dropped ?? []).filter((r) => r.to > c.acked).sort((a, b) => a.from - b.from);
      const lastDropped = dropped.reduce((m, r) => Math.max(m, r.to), 0);
      this.#devices.set(deviceId, { lastSeq: Math.max(c.lastSeq, c.acked, lastDropped), acked: c.acked, dropped });
    }
  }

  async #loadLedgerSnapshot(): Promise<void> {
    try {
      const now = Date.now();
      for (const entry of await readLedgerSnapshot(this.#dir)) this.#ledger.add(entry, now);
    } catch (err) {
      // Written atomically, so this is outside damage: only resends of older messages are at risk.
      this.#log.error({ err }, 'ledger.json unreadable: resends of messages taken before the last segment deletion may be journaled again');
    }
  }

  /** Adds the segment's ledger records whose whole batch is on disk right before them. */
  #loadLedgerRecords(name: string, buf: Buffer, scan: ReturnType<typeof scanRecords>): number {
    const now = Date.now();
    let loaded = 0;
    for (const ref of scan.ledger) {
      let entry: LedgerEntry | undefined;
      try {
        entry = decodeLedgerEntry(buf, ref);
      } catch {
        entry = undefined;
      }
      const count = entry ? Object.values(entry.ranges).reduce((n, [from, to]) => n + to - from + 1, 0) : 0;
      if (!entry || count > ref.run || !batchMatches(entry.ranges, scan.records.slice(ref.recordIndex - count, ref.recordIndex))) {
        this.#stats.ledgerRecordsIgnored++;
        this.#log.warn({ segment: name, offset: ref.offset }, 'ledger record whose readings are not all on disk before it: ignored');
        continue;
      }
      this.#ledger.add(entry, now);
      loaded++;
    }
    return loaded;
  }

  async #loadSegments(): Promise<void> {
    const { segments, temporaries } = await listSegmentFiles(this.#dir);
    for (const name of temporaries) {
      await removeQuietly(join(this.#dir, name));
      this.#log.info({ file: name }, 'removed the leftover of an interrupted write');
    }
    const emptySealed: SegmentMeta[] = [];
    for (let i = 0; i < segments.length; i++) {
      const { base, name } = segments[i]!;
      const isLast = i === segments.length - 1;
      const meta = new SegmentMeta(base, name);
      const buf = await readFile(meta.path(this.#dir));
      const scan = scanRecords(buf);
      for (const region of scan.corrupt) {
        this.#stats.corruptRegions++;
        this.#stats.corruptBytes += region.bytes;
        this.#log.error(
          { segment: name, offset: region.offset, bytes: region.bytes },
          'corrupt bytes inside a segment (checksum mismatch): skipped to the next valid record',
        );
      }
      if (scan.validEnd < buf.length) {
        const torn = buf.length - scan.validEnd;
        this.#stats.tornTails++;
        this.#stats.tornBytes += torn;
        this.#log.warn(
          { segment: name, offset: scan.validEnd, bytes: torn, last: isLast },
          'torn or invalid tail after the last valid record: truncated',
        );
        const handle = await open(meta.path(this.#dir), 'r+');
        try {
          await handle.truncate(scan.validEnd);
          await handle.datasync();
        } finally {
          await handle.close();
        }
      }
      for (const ref of scan.records) {
        const device = this.#device(ref.deviceId);
        // Refuse at open, not at the first read: a reading still to send that this key cannot open.
        if (ref.keyId !== undefined && ref.seq > device.acked && ref.keyId !== this.#cipher?.keyId) {
          throw new JournalKeyError(
            this.#cipher
              ? `journal ${this.#dir} holds unsent readings encrypted with key ${keyIdText(ref.keyId)}, not the configured key ${keyIdText(this.#cipher.keyId)}: restore that key until they are sent`
              : `journal ${this.#dir} holds unsent readings encrypted with key ${keyIdText(ref.keyId)}: set journal.encryptionKeyFile to that key`,
          );
        }
        if (ref.seq > device.lastSeq) device.lastSeq = ref.seq;
        if (!this.#isDropped(ref)) meta.add(ref.deviceId, ref.seq, ref.kind);
      }
      meta.ledgerRecords = this.#loadLedgerRecords(name, buf, scan);
      meta.bytes = scan.validEnd;
      meta.durableBytes = scan.validEnd; // synced below (last) or at its roll (sealed)
      const frames = scan.records.length + scan.ledger.length;
      this.#nextIndex = base + Math.max(frames, 1);
      if (isLast) {
        meta.view = new SegmentView(buf, scan.validEnd, scan.records);
        if (frames === 0) this.#nextIndex = base;
      } else if (meta.records === 0) {
        // Nothing left to deliver (only dropped waveforms or nothing valid): the checkpoint already says so.
        emptySealed.push(meta);
        continue;
      }
      this.#segments.push(meta);
      this.#bytes += meta.bytes;
    }
    // Deleted only now that every ledger record is loaded, and after a snapshot keeps theirs.
    if (emptySealed.some((m) => m.ledgerRecords > 0)) await this.#writeLedgerSnapshot();
    for (const meta of emptySealed) {
      await rm(meta.path(this.#dir), { force: true });
      this.#stats.segmentsDeleted++;
    }
  }

  async #openActive(): Promise<void> {
    const last = this.#segments[this.#segments.length - 1];
    if (last) {
      this.#handle = await open(last.path(this.#dir), 'r+');
      // After kill -9 the tail may sit only in the page cache; make it durable before it is read out.
      await this.#handle.datasync();
      return;
    }
    const meta = new SegmentMeta(this.#nextIndex);
    meta.view = new SegmentView(Buffer.alloc(0), 0, []);
    this.#handle = await open(meta.path(this.#dir), 'wx', JOURNAL_FILE_MODE);
    await syncDir(this.#dir);
    this.#segments.push(meta);
  }

  // ---- writing -----------------------------------------------------------

  /** fsyncs the active segment and marks what it covered as readable. */
  async #syncActive(): Promise<void> {
    const meta = this.#active();
    const covered = meta.bytes;
    await this.#handle.datasync();
    meta.durableBytes = Math.max(meta.durableBytes, covered);
  }

  async #write(bodies: DeviceReadingBody[], key: string | undefined): Promise<AppendOnceResult> {
    if (this.#failure) throw this.#failure; // close() still lets admitted appends finish
    // Checked inside #exclusive, so two copies of one message racing in (two connections) write once.
    const now = Date.now();
    const taken = key === undefined ? undefined : this.#ledger.get(key, now);
    if (taken) {
      this.#stats.duplicatesSkipped++;
      return { readings: [], duplicateOf: taken };
    }
    const nextSeq = new Map<string, number>();
    const readings: Reading[] = [];
    const encoded: Buffer[] = [];
    let total = 0;
    for (const body of bodies) {
      const { deviceId, seq: _seq, late: _late, ...rest } = body as DeviceReadingBody & { seq?: number; late?: boolean };
      if (typeof deviceId !== 'string') throw new TypeError('reading without a deviceId');
      if (!KINDS.has(rest.kind)) throw new TypeError(`reading of unknown kind ${String(rest.kind)}`);
      const seq = (nextSeq.get(deviceId) ?? this.lastSeq(deviceId)) + 1;
      nextSeq.set(deviceId, seq);
      const reading = { deviceId, seq, ...rest } as Reading;
      const record = encodeRecord(reading, this.#cipher);
      readings.push(reading);
      encoded.push(record);
      total += record.length;
    }
    let entry: LedgerEntry | undefined;
    if (key !== undefined) {
      const ranges: SeqRanges = {};
      for (const r of readings) ranges[r.deviceId] = [ranges[r.deviceId]?.[0] ?? r.seq, r.seq];
      entry = { key, at: now, ranges };
      // Last in the batch: a write torn before it leaves readings without it (journaled again on resend), never it without them.
      const record = encodeLedgerRecord(entry);
      encoded.push(record);
      total += record.length;
    }

    await this.#makeRoom(total);
    let active = this.#active();
    if (active.bytes > 0 && active.bytes + total > this.#segmentBytes) {
      await this.#roll();
      active = this.#active();
    }
    const batch = encoded.length === 1 ? encoded[0]! : Buffer.concat(encoded, total);
    const at = active.bytes;
    try {
      await writeFully(this.#handle, batch, at);
    } catch (err) {
      // Take back a partial write so the batch is all or nothing.
      await this.#handle.truncate(at).catch((e: Error) => this.#fail(e, 'could not undo a failed write'));
      throw err;
    }

    const refs: RecordRef[] = [];
    let offset = 0;
    for (let i = 0; i < readings.length; i++) {
      const r = readings[i]!;
      const length = encoded[i]!.length;
      refs.push({ offset, length, deviceId: r.deviceId, seq: r.seq, kind: r.kind, ...(this.#cipher ? { keyId: this.#cipher.keyId } : {}) });
      offset += length;
      active.add(r.deviceId, r.seq, r.kind);
    }
    active.view!.append(batch.subarray(0, offset), refs);
    if (entry) {
      // The view holds readings only; the ledger record's bytes stay in the file (and byte count).
      active.view!.append(batch.subarray(offset), []);
      active.ledgerRecords++;
      this.#ledger.add(entry, now);
    }
    active.bytes += total;
    if (this.#policy === 'never') active.durableBytes = active.bytes;
    this.#bytes += total;
    this.#nextIndex += encoded.length;
    for (const [deviceId, seq] of nextSeq) this.#device(deviceId).lastSeq = seq;
    this.#stats.appended += readings.length;
    return { readings };
  }

  /** Seals the active segment (fsynced, so earlier appends stay durable) and starts the next. */
  async #roll(): Promise<void> {
    const sealed = this.#active();
    const previous = this.#handle;
    const meta = new SegmentMeta(this.#nextIndex);
    meta.view = new SegmentView(Buffer.alloc(0), 0, []);
    const handle = await open(meta.path(this.#dir), 'wx', JOURNAL_FILE_MODE);
    await previous.datasync();
    sealed.durableBytes = sealed.bytes;
    await syncDir(this.#dir);
    this.#handle = handle;
    this.#segments.push(meta);
    await previous.close();
    this.#cacheView(sealed);
  }

  // ---- size cap ----------------------------------------------------------

  async #makeRoom(incoming: number): Promise<void> {
    if (this.#bytes + incoming <= this.#maxBytes) return;
    const goal = Math.max(0, Math.floor(this.#maxBytes * this.#lowWater) - incoming);
    const acked = (deviceId: string): number => this.ackedSeq(deviceId);
    while (this.#bytes > goal) {
      const candidate = nextCompactionCandidate(this.#segments, acked);
      if (candidate) {
        await this.#compact(candidate);
        continue;
      }
      const active = this.#active();
      if (active.records > 0 && (active.waveforms > 0 || active.hasAtOrBefore(acked))) {
        await this.#roll(); // the old active segment becomes the next candidate
        continue;
      }
      break;
    }
    if (this.#bytes + incoming > this.#maxBytes) {
      this.#stats.rejectedFull++;
      const message =
        `journal full: ${this.#bytes} of ${this.#maxBytes} bytes hold only un-acknowledged ` +
        'numerics, alarms and status; refusing new readings rather than dropping them';
      this.#log.error({ bytes: this.#bytes, maxBytes: this.#maxBytes, incoming }, message);
      throw new JournalFullError(message);
    }
  }

  /**
   * Rewrites a sealed segment without its un-acknowledged waveforms and its
   * acknowledged records. The checkpoint (dropped ranges, last seqs) is
   * written before the rewritten file replaces the old one, so a crash in
   * between leaves readings that open() recognises as dropped, never a gap
   * nobody recorded.
   */
  async #compact(meta: SegmentMeta): Promise<void> {
    const view = meta.view ?? this.#viewFrom(await readSegment(this.#dir, meta));
    const plan = planCompaction(view.records, (id) => this.ackedSeq(id), (ref) => this.#isDropped(ref));
    const path = meta.path(this.#dir);
    const tmp = `${path}.tmp`;
    if (plan.keep.length > 0) {
      const out = Buffer.allocUnsafe(plan.keptBytes);
      let at = 0;
      for (const ref of plan.keep) at += view.buffer.copy(out, at, ref.offset, ref.offset + ref.length);
      const handle = await open(tmp, 'w', JOURNAL_FILE_MODE);
      try {
        await writeFully(handle, out, 0);
        await handle.datasync();
      } finally {
        await handle.close();
      }
    }
    for (const [deviceId, range] of plan.dropped) insertRange(this.#device(deviceId).dropped, range);
    await this.#writeCheckpoint();
    // The rewrite keeps readings only: the segment's ledger records must be in the snapshot first.
    if (meta.ledgerRecords > 0) await this.#writeLedgerSnapshot();
    if (plan.keep.length > 0) await rename(tmp, path);
    else await rm(path, { force: true });
    await syncDir(this.#dir);

    const before = meta.bytes;
    meta.reset();
    this.#uncacheView(meta);
    for (const ref of plan.keep) meta.add(ref.deviceId, ref.seq, ref.kind);
    meta.bytes = plan.keptBytes;
    meta.durableBytes = plan.keptBytes;
    this.#bytes -= before - plan.keptBytes;
    if (plan.keep.length === 0) {
      this.#segments = this.#segments.filter((m) => m !== meta);
      this.#stats.segmentsDeleted++;
    }
    this.#stats.compactions++;
    this.#stats.droppedWaveforms += plan.droppedWaveforms;
    if (plan.droppedWaveforms > 0) {
      this.#log.warn(
        {
          segment: meta.name,
          droppedWaveforms: plan.droppedWaveforms,
          devices: Object.fromEntries(plan.dropped),
          reclaimedBytes: before - plan.keptBytes,
          bytes: this.#bytes,
          maxBytes: this.#maxBytes,
        },
        'journal over its size cap: dropped the oldest un-acknowledged waveform readings',
      );
    }
    for (const [deviceId, range] of plan.dropped) this.emit('dropped', deviceId, { ...range });
  }

  // ---- acknowledgements --------------------------------------------------

  /** Coalesces acks: one checkpoint write covers every ack made before it starts. */
  #persistAcks(): Promise<void> {
    if (this.#ackWrite) return this.#ackWrite;
    const write = this.#exclusive(async () => {
      this.#ackWrite = undefined;
      const checkpoint = await this.#writeCheckpoint();
      await this.#deleteAcknowledgedSegments(checkpoint);
    });
    this.#ackWrite = write;
    return write;
  }

  async #deleteAcknowledgedSegments(checkpoint: Checkpoint): Promise<void> {
    const acked = (deviceId: string): number => checkpoint.devices[deviceId]?.acked ?? 0;
    const sealed = this.#segments.slice(0, -1).filter((meta) => !meta.hasAfter(acked));
    if (sealed.length === 0) return;
    if (sealed.some((meta) => meta.ledgerRecords > 0)) await this.#writeLedgerSnapshot();
    for (const meta of sealed) {
      await rm(meta.path(this.#dir), { force: true });
      this.#bytes -= meta.bytes;
      this.#uncacheView(meta);
      this.#stats.segmentsDeleted++;
    }
    this.#segments = this.#segments.filter((m) => !sealed.includes(m));
    await syncDir(this.#dir);
    this.#log.debug({ deleted: sealed.length, bytes: this.#bytes }, 'deleted acknowledged segments');
  }

  /** Writes ledger.json as of now: before a segment holding ledger records goes. Call inside #exclusive. */
  async #writeLedgerSnapshot(): Promise<void> {
    this.#ledger.prune(Date.now());
    await writeLedgerSnapshot(this.#dir, this.#ledger.entries());
  }

  /** Writes the checkpoint as of now and returns what it wrote. Call inside #exclusive. */
  async #writeCheckpoint(): Promise<Checkpoint> {
    const checkpoint = emptyCheckpoint();
    for (const [deviceId, d] of this.#devices) {
      checkpoint.devices[deviceId] = { acked: d.acked, lastSeq: d.lastSeq, dropped: d.dropped.map((r) => ({ ...r })) };
    }
    await writeCheckpoint(this.#dir, checkpoint);
    return checkpoint;
  }

  // ---- reading -----------------------------------------------------------

  async #read(after: ReadonlyMap<string, number> | undefined, limit: number, only: string | undefined): Promise<Reading[]> {
    this.#assertOpen();
    const cursor = (deviceId: string): number =>
      only !== undefined && deviceId !== only
        ? Number.MAX_SAFE_INTEGER
        : Math.max(after?.get(deviceId) ?? 0, this.ackedSeq(deviceId));
    const out: Reading[] = [];
    for (const meta of [...this.#segments]) {
      if (!meta.hasAfter(cursor)) continue;
      // Read before the await: a compaction finishing meanwhile shrinks durableBytes to
      // its rewritten file, which must not be measured against this view's offsets.
      const durableBytes = meta.durableBytes;
      const view = await this.#viewOf(meta);
      for (const ref of view.records) {
        // Never hand out what a power loss could still take back: the hub would hold a seq
        // the journal lost. Stop the whole read there, never skip ahead: a reader takes a
        // hole in the seqs for readings that are gone (the uplink sends it as a gap).
        if (ref.offset + ref.length > durableBytes) return out;
        if (ref.seq <= cursor(ref.deviceId) || this.#isDropped(ref)) continue;
        out.push(decodeReading(view.buffer, ref, this.#cipher));
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  async #viewOf(meta: SegmentMeta): Promise<SegmentView> {
    if (meta.view) return meta.view;
    const generation = meta.generation;
    const view = this.#viewFrom(await readSegment(this.#dir, meta));
    // A compaction or deletion meanwhile makes this view stale: use it once, do not cache it.
    if (meta.generation === generation && this.#segments.includes(meta)) {
      meta.view = view;
      this.#cacheView(meta);
    }
    return view;
  }

  #viewFrom(buf: Buffer): SegmentView {
    const scan = scanRecords(buf); // corruption was counted and logged at open
    return new SegmentView(buf, scan.validEnd, scan.records);
  }

  #cacheView(meta: SegmentMeta): void {
    this.#cachedViews = this.#cachedViews.filter((m) => m !== meta);
    this.#cachedViews.push(meta);
    while (this.#cachedViews.length > SEALED_VIEWS_CACHED) this.#cachedViews.shift()!.view = undefined;
  }

  #uncacheView(meta: SegmentMeta): void {
    this.#cachedViews = this.#cachedViews.filter((m) => m !== meta);
    meta.view = undefined;
  }

  // ---- helpers -----------------------------------------------------------

  #active(): SegmentMeta {
    return this.#segments[this.#segments.length - 1]!;
  }

  #device(deviceId: string): DeviceState {
    let device = this.#devices.get(deviceId);
    if (!device) this.#devices.set(deviceId, (device = { lastSeq: 0, acked: 0, dropped: [] }));
    return device;
  }

  #isDropped(ref: RecordRef): boolean {
    if (ref.kind !== 'waveform') return false;
    const dropped = this.#devices.get(ref.deviceId)?.dropped;
    return dropped !== undefined && dropped.length > 0 && inRanges(dropped, ref.seq);
  }

  /** Runs mutations (writes, rolls, compactions, checkpoints, deletions) one at a time. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #assertOpen(): void {
    if (this.#closed) throw new JournalClosedError();
  }

  #assertUsable(): void {
    this.#assertOpen();
    if (this.#failure) throw this.#failure;
  }

  #fail(err: Error, why: string): void {
    if (!this.#failure) {
      this.#failure = new Error(`journal failed (${why}): ${err.message}`, { cause: err });
      this.#log.error({ err }, `journal failed (${why}); refusing further readings`);
    }
  }
}
