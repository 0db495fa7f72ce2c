import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, auditMetrics } from '../../src/audit/AuditLog.js';
import { recordHash } from '../../src/audit/chain.js';
import type { AuditEvent, AuditRecord } from '../../src/audit/events.js';
import { listDayFiles, verifyAuditDir } from '../../src/audit/files.js';
import { PROJECT_ROOT } from '../support/hub.js';

// The audit log on its own: the chain, what verify catches (through the real
// CLI and its exit code), crash recovery, retention, the bounded queue, query.

const bin = join(PROJECT_ROOT, 'bin', 'hoichan.js');
const DAY = 86_400_000;

function verifyCli(dir: string, env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [bin, 'audit', 'verify', '--dir', dir], {
    env: { PATH: process.env.PATH ?? '', HOICHAN_LOG_LEVEL: 'silent', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, out: result.stdout + result.stderr };
}

function join_(conferenceId: string, n: number): AuditEvent {
  return { type: 'conference.join', actor: { sub: `spec-${n}`, role: 'specialist', ip: '127.0.0.1' }, conferenceId, outcome: 'ok', target: { peerId: `peer-${n}` } };
}

function linesOf(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').filter(Boolean);
}

function writeLines(file: string, lines: string[]): void {
  writeFileSync(file, lines.map((l) => `${l}\n`).join(''));
}

describe('audit log', function () {
  this.timeout(60_000);
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'hoichan-audit-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** A closed log of audit.start + n joins in one day file; returns its path. */
  async function writeLog(dir: string, n: number, hmacKey: string | null = null): Promise<string> {
    const audit = await AuditLog.open({ dir, retentionDays: 365, hmacKey });
    for (let i = 0; i < n; i++) audit.record(join_(i % 2 ? 'conf-a' : 'conf-b', i));
    await audit.close();
    const files = await listDayFiles(dir);
    expect(files).to.have.length(1);
    return files[0]!.path;
  }

  it('writes a chain that verifies, in a 0700 directory of 0600 day files, continuing across restarts', async () => {
    const dir = join(root, 'audit');
    const file = await writeLog(dir, 10);
    expect(statSync(dir).mode & 0o777).to.equal(0o700);
    expect(statSync(file).mode & 0o777).to.equal(0o600);
    const lines = linesOf(file);
    expect(lines).to.have.length(11);
    const first = JSON.parse(lines[0]!) as AuditRecord;
    expect(first).to.include({ seq: 0, type: 'audit.start', prevHash: '0'.repeat(64) });
    const second = JSON.parse(lines[1]!) as AuditRecord;
    expect(second).to.deep.include({ seq: 1, type: 'conference.join', conferenceId: 'conf-b', outcome: 'ok', prevHash: first.hash });
    expect(Object.keys(second)).to.deep.equal(['seq', 't', 'type', 'actor', 'conferenceId', 'target', 'outcome', 'prevHash', 'hash']);

    // A second run continues the same chain; while it runs, no other writer may open the directory.
    const again = await AuditLog.open({ dir, retentionDays: 365 });
    let busy: Error | undefined;
    await AuditLog.open({ dir, retentionDays: 365 }).catch((err: Error) => (busy = err));
    expect(busy?.message).to.match(/is in use by process \d+/);
    expect(again.head.seq).to.equal(11);
    again.record(join_('conf-c', 99));
    await again.close();
    // A lock left by a process that is gone (a crash) is taken over.
    writeFileSync(join(dir, 'LOCK'), '999999999');
    await (await AuditLog.open({ dir, retentionDays: 365 })).close();
    const result = await verifyAuditDir(dir);
    expect(result).to.include({ ok: true, records: 14, firstSeq: 0 });
    const cli = verifyCli(dir);
    expect(cli.status, cli.out).to.equal(0);
    expect(cli.out).to.include('audit log OK: 14 records').and.include(`hash ${result.head!.hash}`);
  });

  it('verify finds an edited record, a deleted one, a reordering and an edited hash (exit 1, the line and seq)', async () => {
    const original = join(root, 'original');
    const file = await writeLog(original, 10);
    const name = file.slice(original.length + 1);
    const cases: Array<{ what: string; change: (lines: string[]) => string[]; line: number; reason: RegExp }> = [
      {
        what: 'a middle record edited',
        change: (l) => l.map((text, i) => (i === 4 ? text.replace('"conferenceId":"conf-a"', '"conferenceId":"conf-x"') : text)),
        line: 5,
        reason: /hash does not match/,
      },
      { what: 'a record deleted', change: (l) => l.filter((_, i) => i !== 4), line: 5, reason: /seq 5 follows 3/ },
      { what: 'two records swapped', change: (l) => [...l.slice(0, 4), l[5]!, l[4]!, ...l.slice(6)], line: 5, reason: /seq 5 follows 3/ },
      {
        what: 'a hash edited',
        change: (l) => l.map((text, i) => (i === 4 ? text.replace(/"hash":"[0-9a-f]{64}"/, `"hash":"${'ab'.repeat(32)}"`) : text)),
        line: 5,
        reason: /hash does not match/,
      },
      {
        what: 'an edit with the hash recomputed',
        change: (l) =>
          l.map((text, i) => {
            if (i !== 4) return text;
            const record = JSON.parse(text) as AuditRecord;
            record.actor.sub = 'someone-else';
            return JSON.stringify({ ...record, hash: recordHash(record) });
          }),
        line: 6,
        reason: /prevHash does not match/,
      },
      { what: 'the first records cut', change: (l) => l.slice(3), line: 1, reason: /starts mid-way/ },
      { what: 'a line that is not JSON', change: (l) => l.map((text, i) => (i === 7 ? text.slice(0, 40) : text)), line: 8, reason: /not valid JSON/ },
    ];
    for (const c of cases) {
      const dir = join(root, c.what.replace(/\W+/g, '-'));
      cpSync(original, dir, { recursive: true });
      writeLines(join(dir, name), c.change(linesOf(join(dir, name))));
      const result = await verifyAuditDir(dir);
      expect(result.ok, c.what).to.equal(false);
      expect(result.broken, c.what).to.include({ file: name, line: c.line });
      expect(result.broken!.reason, c.what).to.match(c.reason);
      const cli = verifyCli(dir);
      expect(cli.status, `${c.what}: ${cli.out}`).to.equal(1);
      expect(cli.out, c.what).to.include(`BROKEN at ${name} line ${c.line}`);
    }
  });

  it('with audit.hmacKey, a record edited and re-hashed without the key is caught at that record', async () => {
    const key = 'k'.repeat(40);
    const dir = join(root, 'hmac');
    const file = await writeLog(dir, 6, key);
    expect((await verifyAuditDir(dir, key)).ok).to.equal(true);
    // Without the key the chain does not verify at all: it was not written with plain SHA-256.
    expect((await verifyAuditDir(dir)).broken).to.include({ line: 1 });
    const lines = linesOf(file).map((text, i) => {
      if (i !== 3) return text;
      const record = JSON.parse(text) as AuditRecord;
      record.conferenceId = 'conf-x';
      return JSON.stringify({ ...record, hash: recordHash(record) });
    });
    writeLines(file, lines);
    const result = await verifyAuditDir(dir, key);
    expect(result.broken).to.include({ line: 4, seq: 3 });
    expect(verifyCli(dir, { HOICHAN_AUDIT_HMAC_KEY: key }).status).to.equal(1);
  });

  it('a torn last line after a crash is cut off, recorded as audit.recovered, and the chain continues', async () => {
    const dir = join(root, 'torn');
    const file = await writeLog(dir, 5);
    const size = statSync(file).size;
    const lastLength = Buffer.byteLength(linesOf(file).at(-1)!) + 1;
    // A crash mid-append: half of the last record reached the disk.
    truncateSync(file, size - Math.floor(lastLength / 2));
    const torn = await verifyAuditDir(dir);
    expect(torn.ok).to.equal(true);
    expect(torn.tornTail?.bytes).to.be.greaterThan(0);
    expect(torn.head!.seq).to.equal(4);

    const audit = await AuditLog.open({ dir, retentionDays: 365 });
    audit.record(join_('conf-a', 50));
    await audit.close();
    const records = linesOf(file).map((l) => JSON.parse(l) as AuditRecord);
    expect(records.map((r) => r.seq)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(records[5]).to.deep.include({ type: 'audit.recovered', target: { file: file.slice(dir.length + 1), droppedBytes: lastLength - Math.floor(lastLength / 2) } });
    expect(records[6]!.type).to.equal('audit.start');
    expect((await verifyAuditDir(dir)).ok).to.equal(true);
    expect(verifyCli(dir).status).to.equal(0);
  });

  it('retention deletes old day files, records audit.pruned, and the kept chain still verifies', async () => {
    const dir = join(root, 'retention');
    const today = Date.now();
    // Three days of records: 400, 399 and 10 days ago.
    for (const daysAgo of [400, 399, 10]) {
      const audit = await AuditLog.open({ dir, retentionDays: 3650, now: () => today - daysAgo * DAY });
      for (let i = 0; i < 3; i++) audit.record(join_('conf-a', i));
      await audit.close();
    }
    expect((await listDayFiles(dir)).length).to.equal(3);
    const lastOfOld = linesOf((await listDayFiles(dir))[1]!.path).map((l) => JSON.parse(l) as AuditRecord).at(-1)!;

    // Removing the oldest file by hand (no audit.pruned) breaks the chain's start.
    const forged = join(root, 'forged');
    cpSync(dir, forged, { recursive: true });
    unlinkSync((await listDayFiles(forged))[0]!.path);
    expect((await verifyAuditDir(forged)).broken?.reason).to.match(/starts mid-way/);

    const audit = await AuditLog.open({ dir, retentionDays: 365, now: () => today });
    await audit.close();
    const files = await listDayFiles(dir);
    expect(files.map((f) => f.day)).to.deep.equal([new Date(today - 10 * DAY).toISOString().slice(0, 10), new Date(today).toISOString().slice(0, 10)]);
    const pruned = linesOf(files[1]!.path)
      .map((l) => JSON.parse(l) as AuditRecord)
      .find((r) => r.type === 'audit.pruned')!;
    expect(pruned.target).to.deep.include({ files: 2, lastSeq: lastOfOld.seq, lastHash: lastOfOld.hash });
    const result = await verifyAuditDir(dir);
    expect(result, JSON.stringify(result.broken)).to.include({ ok: true, firstSeq: lastOfOld.seq + 1 });
    expect(verifyCli(dir).status).to.equal(0);
  });

  it('a burst beyond the queue bound is dropped, counted, and the count written into the chain', async () => {
    const dir = join(root, 'burst');
    const audit = await AuditLog.open({ dir, retentionDays: 365, maxQueue: 100 });
    const droppedBefore = (await auditMetrics.dropped.get()).values[0]?.value ?? 0;
    // Synchronously, so the writer cannot take any of it before the queue is full.
    for (let i = 0; i < 1000; i++) audit.record(join_('conf-a', i));
    await audit.flush();
    audit.record(join_('conf-a', 5000));
    await audit.close();
    const records = (await listDayFiles(dir)).flatMap((f) => linesOf(f.path)).map((l) => JSON.parse(l) as AuditRecord);
    const kept = records.filter((r) => r.type === 'conference.join').length;
    const dropped = records.find((r) => r.type === 'audit.dropped');
    expect(kept).to.be.within(100, 101);
    expect(dropped?.target?.count).to.equal(1001 - kept);
    expect(((await auditMetrics.dropped.get()).values[0]?.value ?? 0) - droppedBefore).to.equal(1001 - kept);
    expect((await verifyAuditDir(dir)).ok).to.equal(true);
  });

  it('one source over its per-minute budget is folded into a count, so refusals cannot fill the disk', async () => {
    const dir = join(root, 'flood');
    const audit = await AuditLog.open({ dir, retentionDays: 365, maxPerSourcePerMinute: 5 });
    const before = (await auditMetrics.suppressed.get()).values[0]?.value ?? 0;
    const refused = (ip: string): AuditEvent => ({ type: 'auth.refused', actor: { sub: null, role: null, ip }, outcome: 'unauthorized', target: { via: 'signaling', reason: 'invalid' } });
    for (let i = 0; i < 20; i++) audit.record(refused('10.0.0.66'));
    for (let i = 0; i < 3; i++) audit.record(refused('10.0.0.7'));
    // Another type from the same address has its own budget.
    for (let i = 0; i < 2; i++) audit.record({ type: 'http.forbidden', actor: { sub: 'site-x', role: 'site', ip: '10.0.0.66' }, outcome: 'forbidden', target: { method: 'GET', route: '/api/ops' } });
    audit.flushSuppressed();
    // A new minute: the flooding address is heard again.
    audit.record(refused('10.0.0.66'));
    await audit.close();
    const records = (await listDayFiles(dir)).flatMap((f) => linesOf(f.path)).map((l) => JSON.parse(l) as AuditRecord);
    const from = (ip: string) => records.filter((r) => r.type === 'auth.refused' && r.actor.ip === ip).length;
    expect(from('10.0.0.66')).to.equal(6);
    expect(from('10.0.0.7')).to.equal(3);
    expect(records.filter((r) => r.type === 'http.forbidden')).to.have.length(2);
    const summaries = records.filter((r) => r.type === 'audit.suppressed');
    expect(summaries).to.have.length(1);
    expect(summaries[0]).to.deep.include({ actor: { sub: null, role: null, ip: '10.0.0.66' }, target: { type: 'auth.refused', count: 15 } });
    expect(((await auditMetrics.suppressed.get()).values[0]?.value ?? 0) - before).to.equal(15);
    expect((await verifyAuditDir(dir)).ok).to.equal(true);
  });

  it('query: newest first, filtered, bounded, with the chain checked over what it read; records cut off the end show', async () => {
    const dir = join(root, 'query');
    const audit = await AuditLog.open({ dir, retentionDays: 365 });
    try {
      for (let i = 0; i < 30; i++) audit.record(join_(i % 3 === 0 ? 'conf-a' : 'conf-b', i));
      audit.record({ type: 'auth.refused', actor: { sub: null, role: null, ip: '10.0.0.9' }, outcome: 'unauthorized', target: { via: 'signaling', reason: 'invalid' } });
      const all = await audit.query({ limit: 1000 });
      expect(all.records.map((r) => r.seq)).to.deep.equal(Array.from({ length: 32 }, (_, i) => 31 - i));
      expect(all.chain).to.deep.equal({ ok: true, fromSeq: 0, toSeq: 31 });
      expect(all.more).to.equal(false);

      const confA = await audit.query({ conferenceId: 'conf-a', limit: 4 });
      expect(confA.records.map((r) => r.actor.sub)).to.deep.equal(['spec-27', 'spec-24', 'spec-21', 'spec-18']);
      expect(confA.more).to.equal(true);
      const next = await audit.query({ conferenceId: 'conf-a', limit: 4, beforeSeq: confA.records.at(-1)!.seq });
      expect(next.records.map((r) => r.actor.sub)).to.deep.equal(['spec-15', 'spec-12', 'spec-9', 'spec-6']);
      expect((await audit.query({ actor: 'spec-7', limit: 10 })).records).to.have.length(1);
      expect((await audit.query({ type: 'auth', limit: 10 })).records.map((r) => r.type)).to.deep.equal(['auth.refused']);
      expect((await audit.query({ type: 'conference.join', limit: 1000 })).records).to.have.length(30);
      expect((await audit.query({ from: Date.now() + DAY, limit: 10 })).records).to.have.length(0);

      // Cut the last two records off the file under the running log.
      const file = (await listDayFiles(dir))[0]!.path;
      writeLines(file, linesOf(file).slice(0, -2));
      const cut = await audit.query({ limit: 5 });
      expect(cut.chain.ok).to.equal(false);
      expect(cut.chain.broken?.reason).to.match(/last written record \(seq 31\) is missing/);
    } finally {
      await audit.close();
    }
  });

  it('clips long fields to the record schema bound (the chain still verifies) and ignores other files in the directory', async () => {
    const dir = join(root, 'clip');
    const audit = await AuditLog.open({ dir, retentionDays: 365 });
    audit.record({ type: 'http.forbidden', actor: { sub: 'x'.repeat(500), role: 'site', ip: '127.0.0.1' }, outcome: 'forbidden', target: { method: 'GET', route: `/api/${'y'.repeat(600)}` } });
    await audit.close();
    const [, record] = (await listDayFiles(dir)).flatMap((f) => linesOf(f.path)).map((l) => JSON.parse(l) as AuditRecord);
    expect(record!.actor.sub).to.have.length(256);
    expect(String(record!.target!.route)).to.have.length(256);
    expect((await verifyAuditDir(dir)).ok).to.equal(true);
    expect(readdirSync(dir)).to.have.length(1);
    appendFileSync(join(dir, 'notes.txt'), 'operators may keep other files here');
    expect((await verifyAuditDir(dir)).files).to.equal(1);
  });
});
