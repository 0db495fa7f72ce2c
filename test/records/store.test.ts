import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIGRATIONS, migrate } from '../../src/records/migrations.js';
import { PostgresDriver } from '../../src/records/postgres.js';
import { RecordsStore } from '../../src/records/RecordsStore.js';
import type { SqlDriver } from '../../src/records/sql.js';
import { SqliteDriver } from '../../src/records/sqlite.js';
import { WriteQueue } from '../../src/records/WriteQueue.js';
import { TestPostgres } from '../support/postgres.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 3, 8, 0, 0); // 3 Nov 2026 08:00 UTC

/** One suite, run once per engine: the statements are the same, so the answers must be. */
function storeSuite(engine: string, open: () => Promise<SqlDriver>) {
  describe(`records store on ${engine}`, function () {
    let db: SqlDriver;
    let store: RecordsStore;

    before(async () => {
      db = await open();
      store = new RecordsStore(db);
      expect(await migrate(db)).to.equal(MIGRATIONS.length);
    });
    after(async () => db?.close());

    async function session(opts: { conferenceId: string; startedAt: number; minutes: number; sites: string[]; deviceSite?: string; alarms?: number; hubId?: string }) {
      const id = randomUUID();
      await store.startSession({ id, conferenceId: opts.conferenceId, hubId: opts.hubId ?? 'hub-a', startedAt: opts.startedAt });
      for (const [i, site] of opts.sites.entries()) {
        await store.addParticipant({ id: randomUUID(), sessionId: id, peerId: `p${i}`, userId: `u${i}`, displayName: `Dr ${i}`, role: i === 0 ? 'specialist' : 'site', siteId: site, hubId: 'hub-a', joinedAt: opts.startedAt + i * 1000 });
      }
      if (opts.deviceSite) {
        await store.addDevice({ id: randomUUID(), sessionId: id, deviceId: `mon-${opts.deviceSite}`, siteId: opts.deviceSite, type: 'vitals', model: 'BeneVision N12', protocol: 'hl7', channels: [{ code: 'MDC_ECG_HEART_RATE', unit: '/min', kind: 'numeric' }], firstSeenAt: opts.startedAt });
        await store.deviceProgress(id, `mon-${opts.deviceSite}`, { readings: 120, gaps: 1, missingReadings: 5, onlineMs: 60_000, lastReadingAt: opts.startedAt + 60_000 });
        await store.deviceProgress(id, `mon-${opts.deviceSite}`, { readings: 30, gaps: 0, missingReadings: 0, onlineMs: 15_000, lastReadingAt: opts.startedAt + 30_000 });
        for (let a = 0; a < (opts.alarms ?? 0); a++) {
          await store.alarmStarted({ id: randomUUID(), sessionId: id, deviceId: `mon-${opts.deviceSite}`, alarmKey: `k${a}`, code: 'MDC_EVT_LO_VAL_LT_LIM', priority: a % 2 === 0 ? 'high' : 'medium', text: 'SpO2 low', source: { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', value: 85 }, startedAt: opts.startedAt + 5000 });
        }
      }
      await store.endSession(id, opts.startedAt + opts.minutes * 60_000, 'conference_closed');
      return id;
    }

    it('applies its migrations once (a second run changes nothing)', async () => {
      expect(await migrate(db)).to.equal(MIGRATIONS.length);
      const rows = await db.all<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      expect(rows.map((r) => Number(r.version))).to.deep.equal(MIGRATIONS.map((m) => m.version));
    });

    it('keeps a session with its participants, devices, alarms and counters, and ends open participants with it', async () => {
      const id = await session({ conferenceId: 'case-1', startedAt: T0, minutes: 30, sites: ['bv-cho-ray', 'tyt-xa-1'], deviceSite: 'tyt-xa-1', alarms: 2 });
      const detail = (await store.sessionDetail(id))!;
      expect(detail.session).to.include({ conferenceId: 'case-1', startedAt: T0, endedAt: T0 + 30 * 60_000, endReason: 'conference_closed' });
      expect(detail.participants.map((p) => [p.siteId, p.leftAt])).to.deep.equal([
        ['bv-cho-ray', T0 + 30 * 60_000],
        ['tyt-xa-1', T0 + 30 * 60_000],
      ]);
      expect(detail.devices).to.have.length(1);
      // Counters add up; last_reading_at keeps the latest.
      expect(detail.devices[0]).to.include({ readings: 150, gaps: 1, missingReadings: 5, onlineMs: 75_000, lastReadingAt: T0 + 60_000, model: 'BeneVision N12' });
      expect(detail.devices[0]!.channels).to.deep.equal([{ code: 'MDC_ECG_HEART_RATE', unit: '/min', kind: 'numeric' }]);
      expect(detail.alarms).to.have.length(2);
      expect(detail.alarms[0]!.source).to.deep.equal({ code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', value: 85 });
      // A second add of the same device in the same session is a no-op.
      await store.addDevice({ id: randomUUID(), sessionId: id, deviceId: 'mon-tyt-xa-1', siteId: 'x', type: 'other', model: '', protocol: '', channels: [], firstSeenAt: 0 });
      expect((await store.sessionDetail(id))!.devices).to.have.length(1);
    });

    it('stores network summaries, numerics (null kept) and waveform strips (null samples kept)', async () => {
      const id = await session({ conferenceId: 'case-net', startedAt: T0 + 1000, minutes: 1, sites: ['a'] });
      const participant = (await store.sessionDetail(id))!.participants[0]!;
      await store.participantNetwork(participant.id, { samples: 3, bitrateInAvg: 812_000, bitrateOutAvg: 1_200_000, lossInMax: 0.02, lossOutMax: 0, rttAvgMs: 41.5, rttMaxMs: 60 });
      expect((await store.sessionDetail(id))!.participants[0]!.network).to.deep.equal({ samples: 3, bitrateInAvg: 812_000, bitrateOutAvg: 1_200_000, lossInMax: 0.02, lossOutMax: 0, rttAvgMs: 41.5, rttMaxMs: 60 });
      const rows = Array.from({ length: 450 }, (_, i) => ({ sessionId: id, deviceId: 'm', code: 'MDC_ECG_HEART_RATE', unit: '/min', t: T0 + i * 1000, value: i === 7 ? null : 60 + (i % 5) }));
      await store.addNumerics(rows);
      const stored = await store.numerics(id, 1000);
      expect(stored).to.have.length(450);
      expect(stored[7]!.value).to.equal(null);
      expect(await store.numerics(id, 10)).to.have.length(10);
      await store.addWaveform({ sessionId: id, deviceId: 'm', code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', t: T0, sampleRate: 250, samples: [0.1, -0.25, null, 1.5] });
      expect(await store.waveforms(id, 10)).to.deep.equal([{ sessionId: id, deviceId: 'm', code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', t: T0, sampleRate: 250, samples: [0.1, -0.25, null, 1.5] }]);
    });

    it('lists sessions newest first, filtered by dates, site and conference, in keyset pages', async () => {
      const base = Date.UTC(2026, 8, 1);
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) ids.push(await session({ conferenceId: i % 2 === 0 ? 'list-even' : 'list-odd', startedAt: base + i * 3600_000, minutes: 10, sites: ['hq', `station-${i % 3}`] }));
      const range = { from: base, to: base + DAY };
      const all = await store.listSessions({ ...range, limit: 50 });
      expect(all.map((s) => s.id)).to.deep.equal([...ids].reverse());
      expect(all[0]!.sites).to.deep.equal(['hq', 'station-0']);
      expect(all[0]!.participants).to.equal(2);
      const even = await store.listSessions({ ...range, conferenceId: 'list-even', limit: 50 });
      expect(even).to.have.length(4);
      const station1 = await store.listSessions({ ...range, siteId: 'station-1', limit: 50 });
      expect(station1.map((s) => s.id)).to.deep.equal([ids[4], ids[1]]);
      // Pages of 3 cover all seven, none twice.
      const seen: string[] = [];
      let before: { startedAt: number; id: string } | undefined;
      for (;;) {
        const page = await store.listSessions({ ...range, limit: 3, ...(before ? { before } : {}) });
        seen.push(...page.map((s) => s.id));
        if (page.length < 3) break;
        before = { startedAt: page[2]!.startedAt, id: page[2]!.id };
      }
      expect(seen).to.deep.equal([...ids].reverse());
      expect(await store.listSessions({ from: base + 2 * 3600_000, to: base + 4 * 3600_000, limit: 50 })).to.have.length(2);
    });

    it('reports a month per site: consultations, minutes, other sites, devices and alarms', async () => {
      const dec = Date.UTC(2026, 11, 1);
      await session({ conferenceId: 'rep-1', startedAt: dec + DAY, minutes: 20, sites: ['hospital', 'commune-a'], deviceSite: 'commune-a', alarms: 3 });
      await session({ conferenceId: 'rep-2', startedAt: dec + 2 * DAY, minutes: 40, sites: ['hospital', 'commune-b'] });
      await session({ conferenceId: 'rep-3', startedAt: dec + 3 * DAY, minutes: 15, sites: ['hospital', 'commune-a', 'commune-b'], deviceSite: 'commune-a', alarms: 1 });
      // Next month: not counted.
      await session({ conferenceId: 'rep-4', startedAt: Date.UTC(2027, 0, 1), minutes: 99, sites: ['hospital'] });
      const report = await store.monthlyReport(dec, Date.UTC(2027, 0, 1), Date.now());
      expect(report.totals).to.deep.equal({ consultations: 3, minutes: 75, sites: 3, devicesUsed: 1, alarms: 4 });
      const by = Object.fromEntries(report.sites.map((s) => [s.siteId, s]));
      expect(by.hospital).to.include({ consultations: 3, minutes: 75, sitesJoined: 2, devicesUsed: 0, alarms: 0 });
      expect(by['commune-a']).to.include({ consultations: 2, minutes: 35, sitesJoined: 2, devicesUsed: 1, alarms: 4 });
      expect(by['commune-a']!.alarmsByPriority).to.deep.equal({ high: 3, medium: 1 });
      expect(by['commune-b']).to.include({ consultations: 2, minutes: 55, sitesJoined: 2 });
      const one = await store.monthlyReport(dec, Date.UTC(2027, 0, 1), Date.now(), 'rep-2');
      expect(one.totals.consultations).to.equal(1);
    });

    it('closes the sessions a crashed run of this hub left open, at their last activity', async () => {
      const id = randomUUID();
      await store.startSession({ id, conferenceId: 'crash', hubId: 'hub-crash', startedAt: T0 });
      await store.addParticipant({ id: randomUUID(), sessionId: id, peerId: 'p', userId: 'u', displayName: 'X', role: 'site', siteId: null, hubId: 'hub-crash', joinedAt: T0 + 42_000 });
      const other = randomUUID();
      await store.startSession({ id: other, conferenceId: 'crash', hubId: 'hub-other', startedAt: T0 });
      expect(await store.closeAbandoned('hub-crash')).to.deep.equal([id]);
      expect((await store.session(id))!).to.include({ endedAt: T0 + 42_000, endReason: 'hub_stopped' });
      expect((await store.session(other))!.endedAt).to.equal(null);
    });

    it('keeps an outbox: due rows, failures with their next attempt, and sent rows leave it', async () => {
      const id = await session({ conferenceId: 'out', startedAt: T0, minutes: 1, sites: ['a'] });
      const rowId = randomUUID();
      await store.enqueueOutbox({ id: rowId, sessionId: id, endpoint: 'http://127.0.0.1:1/fhir', createdAt: 1000 });
      expect((await store.dueOutbox(1000, 10)).map((r) => r.id)).to.include(rowId);
      await store.outboxFailed(rowId, 5000, 503, 'HTTP 503');
      expect((await store.dueOutbox(4999, 10)).map((r) => r.id)).to.not.include(rowId);
      const [due] = (await store.dueOutbox(5000, 100)).filter((r) => r.id === rowId);
      expect(due).to.include({ attempts: 1, lastStatus: 503, lastError: 'HTTP 503' });
      await store.outboxSent(rowId, 6000, 200);
      expect((await store.dueOutbox(Number.MAX_SAFE_INTEGER, 100)).map((r) => r.id)).to.not.include(rowId);
      expect((await store.outbox(id))[0]).to.include({ status: 'sent', attempts: 2, sentAt: 6000, lastStatus: 200 });
    });

    it('retention deletes expired sessions with every row of theirs, and nothing newer', async () => {
      const old = await session({ conferenceId: 'ret', startedAt: Date.UTC(2020, 0, 1), minutes: 5, sites: ['a'], deviceSite: 'a', alarms: 1 });
      await store.addNumerics([{ sessionId: old, deviceId: 'mon-a', code: 'MDC_TEMP', unit: 'Cel', t: Date.UTC(2020, 0, 1), value: 37 }]);
      const fresh = await session({ conferenceId: 'ret', startedAt: Date.UTC(2026, 0, 1), minutes: 5, sites: ['a'] });
      expect(await store.purge(Date.UTC(2025, 0, 1))).to.equal(1);
      expect(await store.session(old)).to.equal(undefined);
      expect(await store.session(fresh)).to.not.equal(undefined);
      for (const table of ['participants', 'session_devices', 'alarms', 'numerics']) {
        const row = await db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table} WHERE session_id = ?`, [old]);
        expect(Number(row!.n), table).to.equal(0);
      }
    });

    it('queues writes in order, commits them in batches, and drops past its bound (bulk first) with a count', async () => {
      const queue = new WriteQueue(store, 100);
      const id = randomUUID();
      expect(queue.enqueue('essential', 'session start', (s) => s.startSession({ id, conferenceId: 'q', hubId: 'h', startedAt: T0 }))).to.equal(true);
      let accepted = 0;
      for (let i = 0; i < 250; i++) if (queue.enqueue('bulk', 'numerics', (s) => s.addNumerics([{ sessionId: id, deviceId: 'd', code: 'MDC_TEMP', unit: 'Cel', t: T0 + i, value: i }]))) accepted++;
      // Synchronous: nothing was written yet, so exactly the bound was taken.
      expect(accepted).to.equal(99);
      expect(queue.dropped).to.equal(151);
      // Essential writes still fit (up to twice the bound).
      expect(queue.enqueue('essential', 'session end', (s) => s.endSession(id, T0 + 60_000, 'conference_closed'))).to.equal(true);
      // One refused write (a participant of a session that does not exist) costs only itself.
      queue.enqueue('essential', 'participant join', (s) => s.addParticipant({ id: randomUUID(), sessionId: randomUUID(), peerId: 'p', userId: 'u', displayName: 'x', role: 'site', siteId: null, hubId: 'h', joinedAt: T0 }));
      // The queue is still over its bound for bulk writes.
      expect(queue.enqueue('bulk', 'numerics', (s) => s.addNumerics([{ sessionId: id, deviceId: 'd', code: 'MDC_TEMP', unit: 'Cel', t: T0 + 999, value: 1 }]))).to.equal(false);
      await queue.close();
      expect(queue.failed).to.equal(1);
      expect((await store.numerics(id, 1000)).map((n) => n.value)).to.deep.equal(Array.from({ length: 99 }, (_, i) => i));
      expect((await store.session(id))!.endedAt).to.equal(T0 + 60_000);
      expect(queue.enqueue('bulk', 'after close', async () => undefined)).to.equal(false);
    });

    it('a transaction that runs long hands its remaining writes to the next one, in order', async () => {
      const queue = new WriteQueue(store, 1000);
      const id = randomUUID();
      queue.enqueue('essential', 'session start', (s) => s.startSession({ id, conferenceId: 'slices', hubId: 'h', startedAt: T0 }));
      for (let i = 0; i < 20; i++) {
        queue.enqueue('bulk', 'slow numerics', async (s) => {
          // Longer than a slice (8 ms on SQLite): each transaction takes one or two writes.
          const until = performance.now() + 5;
          while (performance.now() < until);
          await s.addNumerics([{ sessionId: id, deviceId: 'd', code: 'MDC_TEMP', unit: 'Cel', t: T0 + i, value: i }]);
        });
      }
      await queue.flush();
      expect((await store.numerics(id, 100)).map((n) => n.value)).to.deep.equal(Array.from({ length: 20 }, (_, i) => i));
      expect(queue.failed).to.equal(0);
    });
  });
}

const sqliteDir = mkdtempSync(join(tmpdir(), 'hoichan-test-records-'));
after(() => rmSync(sqliteDir, { recursive: true, force: true }));
storeSuite('SQLite', async () => SqliteDriver.open(join(sqliteDir, 'records.sqlite')));

let cluster: TestPostgres | undefined;
storeSuite('PostgreSQL', async () => {
  cluster = await TestPostgres.start();
  return PostgresDriver.connect(await cluster.createDatabase('records_store'));
});
after(async () => cluster?.stop());
