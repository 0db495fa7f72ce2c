// The hash chain, pure: canonical form, hashing, and the rules a sequence of
// records must follow. AuditLog.ts and verify.ts do the file work.
//
// hash = SHA-256 (or HMAC-SHA256 with audit.hmacKey) over the canonical JSON of
// the record without `hash`; the record holds prevHash, so each hash covers the
// whole chain before it. An edit, a deletion or a reordering anywhere before the
// head breaks a link. Cutting records off the end leaves a valid, shorter chain:
// only a head anchored outside the hub (GET /api/audit/head, the periodic
// "audit head" log line) shows that (docs/SECURITY.md).

import { createHash, createHmac } from 'node:crypto';
import { GENESIS_HASH, auditRecordSchema, type AuditRecord } from './events.js';

/**
 * JSON with object keys sorted at every level and no whitespace: one byte
 * string per value. Built as sorted copies handed to one JSON.stringify, which
 * is several times faster than stringifying key by key (every record is hashed
 * on the signaling path and again by each verify). Keys are never integer-like
 * (JavaScript would put those first whatever the insertion order).
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortedCopy(value));
}

function sortedCopy(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(sortedCopy);
  const source = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(source).sort()) {
    if (source[key] !== undefined) out[key] = sortedCopy(source[key]);
  }
  return out;
}

export function recordHash(record: Omit<AuditRecord, 'hash'>, hmacKey?: string | null): string {
  const { hash: _ignored, ...body } = record as AuditRecord;
  const text = canonicalJson(body);
  return hmacKey ? createHmac('sha256', hmacKey).update(text).digest('hex') : createHash('sha256').update(text).digest('hex');
}

/** The chain's last link: what the next record must point at. */
export interface ChainHead {
  seq: number;
  hash: string;
  t?: string;
}

/** Where a chain breaks, with enough to find the line. */
export interface ChainBreak {
  file: string;
  /** 1-based line in the file. */
  line: number;
  seq?: number;
  reason: string;
}

export type ParsedLine = { ok: true; record: AuditRecord } | { ok: false; reason: string };

export function parseLine(text: string): ParsedLine {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not valid JSON' };
  }
  const parsed = auditRecordSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, reason: `not an audit record (${issue?.path.join('.') || 'record'}: ${issue?.message ?? 'invalid'})` };
  }
  return { ok: true, record: parsed.data };
}

/**
 * Checks records one by one against the previous one. Without an anchor the
 * first record must be the genesis (seq 0, prevHash of zeros) or be vouched for
 * later by an audit.pruned record (retention deleted what came before it);
 * call finish() after the last record to settle that.
 */
export class ChainVerifier {
  readonly #key: string | null;
  #prev: ChainHead | undefined;
  #first: { seq: number; prevHash: string; file: string; line: number } | undefined;
  /** lastSeq → lastHash of every audit.pruned record seen. */
  readonly #pruned = new Map<number, string>();
  #count = 0;
  #firstSeq: number | undefined;

  constructor(hmacKey: string | null = null, anchor?: ChainHead) {
    this.#key = hmacKey;
    this.#prev = anchor;
  }

  get count(): number {
    return this.#count;
  }

  get head(): ChainHead | undefined {
    return this.#prev;
  }

  /** Seq of the first record pushed. */
  get firstSeq(): number | undefined {
    return this.#firstSeq;
  }

  /** Returns the break, or undefined when the record extends the chain. */
  push(record: AuditRecord, file: string, line: number, fileDay?: string): ChainBreak | undefined {
    const at = { file, line, seq: record.seq };
    if (recordHash(record, this.#key) !== record.hash) {
      return { ...at, reason: `hash does not match the record's contents${this.#key ? '' : ' (written with audit.hmacKey? pass the key)'}` };
    }
    if (fileDay !== undefined && record.t.slice(0, 10) !== fileDay) {
      return { ...at, reason: `record of ${record.t.slice(0, 10)} in the file of ${fileDay}` };
    }
    if (this.#prev === undefined) {
      this.#first = { seq: record.seq, prevHash: record.prevHash, file, line };
    } else {
      if (record.seq !== this.#prev.seq + 1) return { ...at, reason: `seq ${record.seq} follows ${this.#prev.seq} (records missing or out of order)` };
      if (record.prevHash !== this.#prev.hash) return { ...at, reason: 'prevHash does not match the previous record\'s hash' };
    }
    if (record.type === 'audit.pruned' && typeof record.target?.lastSeq === 'number' && typeof record.target.lastHash === 'string') {
      this.#pruned.set(record.target.lastSeq, record.target.lastHash);
    }
    this.#prev = { seq: record.seq, hash: record.hash, t: record.t };
    this.#firstSeq ??= record.seq;
    this.#count += 1;
    return undefined;
  }

  /** After the last record: does the chain's start hold (genesis, or vouched for by audit.pruned)? */
  finish(): ChainBreak | undefined {
    const first = this.#first;
    if (!first) return undefined;
    if (first.seq === 0 && first.prevHash === GENESIS_HASH) return undefined;
    if (this.#pruned.get(first.seq - 1) === first.prevHash) return undefined;
    return {
      file: first.file,
      line: first.line,
      seq: first.seq,
      reason: 'the chain starts mid-way and no audit.pruned record vouches for its start (earlier files removed or records cut)',
    };
  }
}
