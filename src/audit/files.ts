// The audit directory's layout: one JSON-lines file per UTC day
// (audit-YYYY-MM-DD.jsonl), so retention deletes whole files and a query for a
// time range opens only the days it covers.

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ChainVerifier, parseLine, type ChainBreak, type ChainHead } from './chain.js';
import { acquirePidLock } from '../common/pidLock.js';

const FILE_PATTERN = /^audit-(\d{4}-\d{2}-\d{2})\.jsonl$/;

export interface DayFile {
  day: string;
  name: string;
  path: string;
}

export function fileNameOf(day: string): string {
  return `audit-${day}.jsonl`;
}

/** UTC day (YYYY-MM-DD) of an ISO time or a millisecond timestamp. */
export function dayOf(time: string | number): string {
  return (typeof time === 'number' ? new Date(time).toISOString() : time).slice(0, 10);
}

/** The directory's day files, oldest first. Other files are ignored. */
export async function listDayFiles(dir: string): Promise<DayFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .map((name) => FILE_PATTERN.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ day: m[1]!, name: m[0], path: join(dir, m[0]) }))
    .sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
}

/** A day file's complete lines, and the bytes after the last newline (a write cut short), if any. */
export async function readDayFile(path: string): Promise<{ lines: string[]; completeBytes: number; tail: number }> {
  const buffer = await readFile(path);
  const end = buffer.lastIndexOf(0x0a) + 1;
  const text = buffer.subarray(0, end).toString('utf8');
  const lines = text.length === 0 ? [] : text.slice(0, -1).split('\n');
  return { lines, completeBytes: end, tail: buffer.length - end };
}

/**
 * One writer per audit directory: two hubs sharing one (the same working
 * directory on one host) would interleave records and fork the chain. A lock
 * left by a process that died is taken over. Returns the release function.
 */
export function acquireAuditLock(dir: string): Promise<() => Promise<void>> {
  return acquirePidLock(
    dir,
    (owner) => `audit directory ${dir} is in use by process ${owner}${owner === process.pid ? ' (this one: an audit log left open)' : ''}; give each hub its own audit.dir`,
  );
}

export interface VerifyResult {
  ok: boolean;
  files: number;
  records: number;
  firstSeq?: number;
  head?: ChainHead;
  /** The first break found; verification stops there. */
  broken?: ChainBreak;
  /** The newest file ends in a partial line: a write in progress, or a crash the hub cuts off at its next start. */
  tornTail?: { file: string; bytes: number };
}

/**
 * Walks every day file in order and checks the whole chain: each line parses,
 * each hash matches its record, seqs rise by one, each prevHash is the hash
 * before it, each record sits in its own day's file, and the chain starts at
 * the genesis or where an audit.pruned record says retention cut it.
 */
export async function verifyAuditDir(dir: string, hmacKey: string | null = null): Promise<VerifyResult> {
  const files = await listDayFiles(dir);
  const verifier = new ChainVerifier(hmacKey);
  const result: VerifyResult = { ok: true, files: files.length, records: 0 };
  for (const [index, file] of files.entries()) {
    const { lines, tail } = await readDayFile(file.path);
    if (tail > 0) {
      // Only the newest file may end mid-line (it is the one being written).
      if (index === files.length - 1) result.tornTail = { file: file.name, bytes: tail };
      else return fail(result, verifier, { file: file.name, line: lines.length + 1, reason: `${tail} bytes after the last complete line in a file that is not the newest` });
    }
    for (const [i, text] of lines.entries()) {
      const parsed = parseLine(text);
      if (!parsed.ok) return fail(result, verifier, { file: file.name, line: i + 1, reason: parsed.reason });
      const broken = verifier.push(parsed.record, file.name, i + 1, file.day);
      if (broken) return fail(result, verifier, broken);
    }
  }
  const start = verifier.finish();
  if (start) return fail(result, verifier, start);
  return { ...result, records: verifier.count, firstSeq: verifier.firstSeq, head: verifier.head };
}

function fail(result: VerifyResult, verifier: ChainVerifier, broken: ChainBreak): VerifyResult {
  return { ...result, ok: false, records: verifier.count, firstSeq: verifier.firstSeq, head: verifier.head, broken };
}
