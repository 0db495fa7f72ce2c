// The hub's audit log: an append-only, hash-chained JSON-lines file per UTC day
// (docs/SECURITY.md, "Audit log"). record() never blocks signaling: it links
// the record into the chain at once (so order is the order of the calls), puts
// the line on a bounded queue, and one writer appends the queue in order,
// fdatasync'ing every fsyncIntervalMs and at close.
//
// When the disk stalls the queue fills; past maxQueue records are dropped,
// counted (hoichan_audit_dropped_total), logged as errors, and the count is
// itself written into the chain (audit.dropped) once there is room again.
// Blocking instead would let a slow disk stop every conference, which is worse
// for patients than a counted, visible gap; losing records silently would be
// worse still.

import { chmod, mkdir, open, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Counter } from 'prom-client';
import { createLogger } from '../common/logger.js';
import { ChainVerifier, parseLine, recordHash, type ChainBreak, type ChainHead } from './chain.js';
import { GENESIS_HASH, SYSTEM_ACTOR, type Actor, type AuditEvent, type AuditRecord } from './events.js';
import { acquireAuditLock, dayOf, fileNameOf, listDayFiles, readDayFile } from './files.js';

const log = createLogger('audit');

const DAY_MS = 86_400_000;

export const auditMetrics = {
  records: new Counter({ name: 'hoichan_audit_records_total', help: 'Audit records appended, by type', labelNames: ['type'] as const }),
  dropped: new Counter({ name: 'hoichan_audit_dropped_total', help: 'Audit records not written because the write queue was full (disk stalled) or the log was closing on a failing disk' }),
  suppressed: new Counter({ name: 'hoichan_audit_suppressed_total', help: 'Audit records folded into an audit.suppressed summary: one source (type, user, address) over audit.maxPerSourcePerMinute' }),
  writeErrors: new Counter({ name: 'hoichan_audit_write_errors_total', help: 'Failed appends or syncs of the audit log (each is retried)' }),
};

export interface AuditLogOptions {
  dir: string;
  /** Day files older than this are deleted (checked at open and every 6 hours). */
  retentionDays: number;
  /** With a key, hashes are HMAC-SHA256: whoever can rewrite the files cannot recompute the chain without it. */
  hmacKey?: string | null;
  fsyncIntervalMs?: number;
  /** Records waiting for the disk beyond which new ones are dropped (and counted). */
  maxQueue?: number;
  /**
   * Records of one source (type, user, address) per minute; past it they are
   * counted and written as one audit.suppressed per source at the minute's end.
   * Default 120.
   */
  maxPerSourcePerMinute?: number;
  /** How often the head (seq, hash) is logged, for anchoring outside the hub. 0 = never. */
  anchorIntervalMs?: number;
  /** Clock (tests move it to write old days). */
  now?: () => number;
}

export interface AuditQuery {
  from?: number;
  to?: number;
  conferenceId?: string;
  actor?: string;
  /** A type (conference.join) or a family (conference). */
  type?: string;
  /** Only records older than this seq: the next page after a `more` answer. */
  beforeSeq?: number;
  limit: number;
}

export interface AuditQueryResult {
  /** Newest first. */
  records: AuditRecord[];
  /** More records matched than limit. */
  more: boolean;
  /**
   * The chain checked over every day file the query read (not just the
   * returned records): links inside and between those files, and that the
   * newest one ends at the log's head.
   */
  chain: { ok: boolean; fromSeq?: number; toSeq?: number; broken?: ChainBreak };
}

interface Pending {
  day: string;
  line: string;
  seq: number;
  hash: string;
}

export class AuditLog {
  readonly dir: string;
  readonly #retentionDays: number;
  readonly #key: string | null;
  readonly #maxQueue: number;
  readonly #now: () => number;
  #head: ChainHead;
  /** The last record known written (the head once the queue is empty). */
  #diskHead: ChainHead;
  readonly #queue: Pending[] = [];
  #writing = false;
  #failedAt = 0;
  #retryTimer?: NodeJS.Timeout;
  #waiters: Array<() => void> = [];
  #handle?: FileHandle;
  #handleDay?: string;
  /** Bytes of the open file known to be complete lines: a failed append is cut back to it. */
  #size = 0;
  #dirty = false;
  #syncDue = false;
  #droppedPending = 0;
  readonly #perSource: number;
  /** This minute's records per source, and what was suppressed of each. */
  readonly #sourceCounts = new Map<string, number>();
  readonly #suppressed = new Map<string, { type: AuditEvent['type']; actor: Actor; count: number }>();
  #droppedLoggedAt = 0;
  #closing = false;
  #closed = false;
  readonly #timers: NodeJS.Timeout[] = [];
  #queries: Promise<unknown> = Promise.resolve();

  readonly #unlock: () => Promise<void>;

  private constructor(options: AuditLogOptions, head: ChainHead, unlock: () => Promise<void>) {
    this.#unlock = unlock;
    this.dir = options.dir;
    this.#retentionDays = options.retentionDays;
    this.#key = options.hmacKey ?? null;
    this.#maxQueue = options.maxQueue ?? 10_000;
    this.#perSource = options.maxPerSourcePerMinute ?? 120;
    this.#now = options.now ?? Date.now;
    this.#head = head;
    this.#diskHead = head;
  }

  /**
   * Opens (or creates, 0700) the directory, finds the chain's head in the
   * newest day file, cuts off a torn last line left by a crash (recording
   * audit.recovered), applies retention, and records audit.start.
   */
  static async open(options: AuditLogOptions): Promise<AuditLog> {
    await mkdir(options.dir, { recursive: true, mode: 0o700 });
    await chmod(options.dir, 0o700);
    const unlock = await acquireAuditLock(options.dir);
    let recoveredHead;
    try {
      recoveredHead = await recoverHead(options.dir, options.hmacKey ?? null);
    } catch (err) {
      await unlock();
      throw err;
    }
    const { head, recovered } = recoveredHead;
    const audit = new AuditLog(options, head, unlock);
    for (const r of recovered) audit.record({ type: 'audit.recovered', actor: SYSTEM_ACTOR, outcome: 'ok', target: r });
    await audit.prune();
    audit.record({ type: 'audit.start', actor: SYSTEM_ACTOR, outcome: 'ok', target: { seq: head.seq } });
    await audit.flush();
    const fsyncMs = options.fsyncIntervalMs ?? 1000;
    audit.#every(fsyncMs, () => {
      audit.#syncDue = true;
      audit.#kick();
    });
    audit.#every(6 * 3600_000, () => void audit.prune().catch((err: Error) => log.error({ err: err.message }, 'audit retention failed')));
    audit.#every(60_000, () => audit.flushSuppressed());
    if (options.anchorIntervalMs) audit.#every(options.anchorIntervalMs, () => audit.#logHead());
    audit.#logHead();
    return audit;
  }

  /** The last record linked into the chain (possibly still on its way to disk). */
  get head(): ChainHead {
    return { ...this.#head };
  }

  /** Links an event into the chain and queues it; never throws, never waits. */
  record(event: AuditEvent): void {
    if (this.#closed) {
      log.warn({ type: event.type }, 'audit record after close ignored');
      return;
    }
    if (event.actor.role !== 'system' && !this.#admit(event)) return;
    if (this.#queue.length >= this.#maxQueue) {
      this.#droppedPending += 1;
      auditMetrics.dropped.inc();
      const now = Date.now();
      if (now - this.#droppedLoggedAt > 10_000) {
        this.#droppedLoggedAt = now;
        log.error({ queued: this.#queue.length, droppedSoFar: this.#droppedPending }, 'AUDIT RECORDS DROPPED: the audit disk is not keeping up; check the disk under audit.dir');
      }
      return;
    }
    if (this.#droppedPending > 0) {
      const count = this.#droppedPending;
      this.#droppedPending = 0;
      this.#append({ type: 'audit.dropped', actor: SYSTEM_ACTOR, outcome: 'ok', target: { count } });
    }
    this.#append(event);
  }

  /**
   * One source may not fill the disk: a client repeating refused handshakes,
   * or a valid user joining and leaving at the signaling rate limit, gets its
   * first maxPerSourcePerMinute records a minute written one by one and the
   * rest as one count. Nothing is lost without a trace; the map is bounded
   * (past 10,000 sources a minute, new ones share one entry).
   */
  #admit(event: AuditEvent): boolean {
    let key = `${event.type}|${event.actor.sub ?? ''}|${event.actor.ip ?? ''}`;
    if (!this.#sourceCounts.has(key) && this.#sourceCounts.size >= 10_000) key = `${event.type}|*`;
    const count = (this.#sourceCounts.get(key) ?? 0) + 1;
    this.#sourceCounts.set(key, count);
    if (count <= this.#perSource) return true;
    const entry = this.#suppressed.get(key);
    if (entry) entry.count += 1;
    else {
      const actor: Actor = key.endsWith('|*') ? { sub: null, role: null } : event.actor;
      this.#suppressed.set(key, { type: event.type, actor, count: 1 });
    }
    auditMetrics.suppressed.inc();
    return false;
  }

  /** Ends the minute: writes one audit.suppressed per source that went over, and starts counting afresh. */
  flushSuppressed(): void {
    this.#sourceCounts.clear();
    const entries = [...this.#suppressed.values()];
    this.#suppressed.clear();
    for (const { type, actor, count } of entries) {
      this.#append({ type: 'audit.suppressed', actor, outcome: 'ok', target: { type, count } });
    }
  }

  #append(event: AuditEvent): void {
    // Time never goes backwards in the chain: a record's day picks its file, and
    // files are read in day order, so a clock stepped back must not put a later
    // record into an earlier day's file.
    const now = new Date(this.#now()).toISOString();
    const t = this.#head.t !== undefined && this.#head.t > now ? this.#head.t : now;
    const body: Omit<AuditRecord, 'hash'> = {
      seq: this.#head.seq + 1,
      t,
      type: event.type,
      actor: clip(event.actor) as AuditRecord['actor'],
      ...(event.conferenceId !== undefined ? { conferenceId: event.conferenceId.slice(0, 256) } : {}),
      ...('target' in event && event.target ? { target: clip(event.target) as AuditRecord['target'] } : {}),
      outcome: event.outcome,
      prevHash: this.#head.hash,
    };
    const record: AuditRecord = { ...body, hash: recordHash(body, this.#key) };
    this.#head = { seq: record.seq, hash: record.hash, t };
    this.#queue.push({ day: dayOf(t), line: `${JSON.stringify(record)}\n`, seq: record.seq, hash: record.hash });
    auditMetrics.records.inc({ type: event.type });
    this.#kick();
  }

  /** Resolves when everything recorded so far is written (or a write failed; it is retried). */
  flush(): Promise<void> {
    if (this.#queue.length === 0 && !this.#writing && !this.#syncDue) return Promise.resolve();
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#writing || this.#retryTimer) return;
    void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0 || (this.#syncDue && this.#dirty)) {
        if (this.#queue.length > 0) {
          const day = this.#queue[0]!.day;
          let count = 0;
          let text = '';
          while (count < this.#queue.length && count < 1000 && this.#queue[count]!.day === day) text += this.#queue[count++]!.line;
          await this.#write(day, text);
          const last = this.#queue[count - 1]!;
          this.#diskHead = { seq: last.seq, hash: last.hash };
          this.#queue.splice(0, count);
        } else {
          this.#syncDue = false;
          this.#dirty = false;
          await this.#handle?.datasync();
        }
      }
      this.#syncDue = false;
    } catch (err) {
      auditMetrics.writeErrors.inc();
      const now = Date.now();
      if (now - this.#failedAt > 10_000) log.error({ err: (err as Error).message, queued: this.#queue.length, dir: this.dir }, 'audit write failed; retrying');
      this.#failedAt = now;
      await this.#closeHandle(true);
      if (!this.#closing) {
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = undefined;
          this.#kick();
        }, 1000);
        this.#retryTimer.unref();
      }
    } finally {
      this.#writing = false;
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  async #write(day: string, text: string): Promise<void> {
    if (this.#handleDay !== day || !this.#handle) {
      await this.#closeHandle(false);
      const handle = await open(join(this.dir, fileNameOf(day)), 'a', 0o600);
      this.#handle = handle;
      this.#handleDay = day;
      this.#size = (await handle.stat()).size;
    }
    try {
      await this.#handle.appendFile(text);
    } catch (err) {
      // Cut a partial append back so the file holds only whole lines.
      await this.#handle.truncate(this.#size).catch(() => undefined);
      throw err;
    }
    this.#size += Buffer.byteLength(text);
    this.#dirty = true;
  }

  async #closeHandle(failed: boolean): Promise<void> {
    const handle = this.#handle;
    if (!handle) return;
    this.#handle = undefined;
    this.#handleDay = undefined;
    if (this.#dirty && !failed) await handle.datasync();
    this.#dirty = false;
    await handle.close().catch(() => undefined);
  }

  /**
   * Deletes day files older than retentionDays. First records audit.pruned
   * (the last deleted record's seq and hash, where the kept chain now starts)
   * and waits for it to be on disk, so a crash between the two leaves a chain
   * that still verifies. Returns the number of files deleted.
   */
  async prune(): Promise<number> {
    const cutoff = dayOf(this.#now() - this.#retentionDays * DAY_MS);
    const old = (await listDayFiles(this.dir)).filter((f) => f.day < cutoff);
    if (old.length === 0) return 0;
    let last: AuditRecord | undefined;
    for (const file of [...old].reverse()) {
      const { lines } = await readDayFile(file.path);
      for (const line of [...lines].reverse()) {
        const parsed = parseLine(line);
        if (parsed.ok) {
          last = parsed.record;
          break;
        }
      }
      if (last) break;
    }
    if (!last) {
      log.error({ files: old.length }, 'audit retention: the old files hold no readable record; not deleting them');
      return 0;
    }
    this.record({
      type: 'audit.pruned',
      actor: SYSTEM_ACTOR,
      outcome: 'ok',
      target: { files: old.length, firstDay: old[0]!.day, lastDay: old[old.length - 1]!.day, lastSeq: last.seq, lastHash: last.hash },
    });
    this.#syncDue = true;
    await this.flush();
    if (this.#queue.length > 0 || this.#dirty) {
      log.error('audit retention: the audit.pruned record is not on disk yet; deleting nothing this time');
      return 0;
    }
    for (const file of old) await unlink(file.path);
    log.info({ files: old.length, through: old[old.length - 1]!.day }, 'audit retention deleted old day files');
    return old.length;
  }

  /** Records matching the query, newest first, with the chain checked over the files read. One query at a time. */
  query(query: AuditQuery): Promise<AuditQueryResult> {
    const run = this.#queries.then(() => this.#query(query));
    this.#queries = run.catch(() => undefined);
    return run;
  }

  async #query(query: AuditQuery): Promise<AuditQueryResult> {
    await this.flush();
    const fromDay = query.from !== undefined ? dayOf(query.from) : undefined;
    const toDay = query.to !== undefined ? dayOf(query.to) : undefined;
    const all = await listDayFiles(this.dir);
    const files = all.filter((f) => (!fromDay || f.day >= fromDay) && (!toDay || f.day <= toDay));
    const out: AuditRecord[] = [];
    const chain: AuditQueryResult['chain'] = { ok: true };
    // When the query reaches the newest file, the last record written must be
    // there: records cut off the end would otherwise leave a chain that verifies.
    let written: ChainHead | undefined = files.length > 0 && files[files.length - 1] === all[all.length - 1] && this.#diskHead.seq >= 0 ? this.#diskHead : undefined;
    let newer: { file: string; seq: number; prevHash: string } | undefined;
    let more = false;
    for (const file of [...files].reverse()) {
      const { lines } = await readDayFile(file.path);
      const verifier = new ChainVerifier(this.#key);
      // Only the newest matches of this file are kept (at most what the answer still needs, plus one to see `more`).
      const room = query.limit - out.length + 1;
      let matched: AuditRecord[] = [];
      let first: AuditRecord | undefined;
      let last: AuditRecord | undefined;
      let writtenFound: AuditRecord | undefined;
      for (const [i, text] of lines.entries()) {
        // A day file can hold many thousands of records: let signaling run between slices.
        if (i % 100 === 99) await new Promise<void>((resolve) => setImmediate(resolve));
        const parsed = parseLine(text);
        if (!parsed.ok) {
          if (chain.ok) Object.assign(chain, { ok: false, broken: { file: file.name, line: i + 1, reason: parsed.reason } });
          continue;
        }
        const r = parsed.record;
        first ??= r;
        last = r;
        if (r.seq === written?.seq) writtenFound = r;
        const broken = chain.ok ? verifier.push(r, file.name, i + 1, file.day) : undefined;
        if (broken) Object.assign(chain, { ok: false, broken });
        if (matches(r, query)) {
          matched.push(r);
          if (matched.length >= 2 * room) matched = matched.slice(-room);
        }
      }
      if (chain.ok && written && first && first.seq <= written.seq) {
        if (writtenFound?.hash !== written.hash) {
          const seq = written.seq;
          Object.assign(chain, { ok: false, broken: { file: file.name, line: lines.length, seq, reason: `the log's last written record (seq ${seq}) is ${writtenFound ? 'altered' : 'missing'}: records cut off the end, or the file replaced` } });
        }
        written = undefined;
      }
      if (chain.ok && newer && (last?.seq !== newer.seq - 1 || last.hash !== newer.prevHash)) {
        Object.assign(chain, { ok: false, broken: { file: newer.file, line: 1, seq: newer.seq, reason: `does not continue from the end of ${file.name} (records cut or files altered)` } });
      }
      if (chain.ok && first && last) {
        chain.toSeq ??= last.seq;
        chain.fromSeq = first.seq;
      }
      newer = first ? { file: file.name, seq: first.seq, prevHash: first.prevHash } : newer;
      for (const r of matched.slice(-room).reverse()) {
        if (out.length === query.limit) {
          more = true;
          break;
        }
        out.push(r);
      }
      if (more) break;
    }
    if (!chain.ok) {
      delete chain.fromSeq;
      delete chain.toSeq;
    }
    return { records: out, more, chain };
  }

  #every(ms: number, fn: () => void): void {
    const timer = setInterval(fn, ms);
    timer.unref();
    this.#timers.push(timer);
  }

  #logHead(): void {
    log.info({ seq: this.#head.seq, hash: this.#head.hash }, 'audit head');
  }

  /** Writes and syncs what is queued, then stops. Records still unwritable are counted as dropped. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    for (const timer of this.#timers) clearInterval(timer);
    if (this.#retryTimer) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
    }
    this.flushSuppressed();
    this.#syncDue = true;
    await this.flush();
    this.#closed = true;
    if (this.#queue.length > 0) {
      auditMetrics.dropped.inc(this.#queue.length);
      log.error({ lost: this.#queue.length }, 'AUDIT RECORDS LOST at close: the audit disk failed');
      this.#queue.length = 0;
    }
    await this.#closeHandle(false).catch((err: Error) => log.error({ err: err.message }, 'audit close failed'));
    await this.#unlock();
    this.#logHead();
  }
}

function matches(r: AuditRecord, q: AuditQuery): boolean {
  if (q.conferenceId !== undefined && r.conferenceId !== q.conferenceId) return false;
  if (q.actor !== undefined && r.actor.sub !== q.actor) return false;
  if (q.beforeSeq !== undefined && r.seq >= q.beforeSeq) return false;
  if (q.type !== undefined && r.type !== q.type && !r.type.startsWith(`${q.type}.`)) return false;
  const t = Date.parse(r.t);
  if (q.from !== undefined && t < q.from) return false;
  if (q.to !== undefined && t > q.to) return false;
  return true;
}

/** Strings cut to the record schema's 256 characters; undefined fields left out. */
function clip(value: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    out[k] = typeof v === 'string' ? v.slice(0, 256) : v;
  }
  return out;
}

/**
 * The chain's head from the newest day file holding a record. A partial last
 * line (a crash mid-append) is cut off and reported. A complete line that does
 * not parse is left in place: it is evidence, and verify reports it; the chain
 * continues from the last record that parses.
 */
async function recoverHead(dir: string, key: string | null): Promise<{ head: ChainHead; recovered: Array<{ file: string; droppedBytes: number }> }> {
  const recovered: Array<{ file: string; droppedBytes: number }> = [];
  const files = await listDayFiles(dir);
  for (const file of [...files].reverse()) {
    const { lines, completeBytes, tail } = await readDayFile(file.path);
    if (tail > 0) {
      await truncate(file.path, completeBytes);
      recovered.push({ file: file.name, droppedBytes: tail });
      log.warn({ file: file.name, droppedBytes: tail }, 'audit log ended in a partial line (crash mid-write); cut it off');
    }
    for (let i = lines.length - 1; i >= 0; i--) {
      const parsed = parseLine(lines[i]!);
      if (!parsed.ok) {
        log.error({ file: file.name, line: i + 1, reason: parsed.reason }, 'audit log line does not parse; verify will report it');
        continue;
      }
      const r = parsed.record;
      if (recordHash(r, key) !== r.hash) log.error({ file: file.name, seq: r.seq }, 'the audit head does not verify (altered, or audit.hmacKey changed); the chain continues from it');
      return { head: { seq: r.seq, hash: r.hash, t: r.t }, recovered };
    }
  }
  return { head: { seq: -1, hash: GENESIS_HASH }, recovered };
}
