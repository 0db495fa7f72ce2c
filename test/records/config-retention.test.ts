import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import type { Hub } from '../../src/hub/Hub.js';
import { startTestHub, TEST_SECRET } from '../support/hub.js';

const DAY = 86_400_000;

describe('records: configuration and the retention job', function () {
  it('takes DATABASE_URL and HOICHAN_FHIR_ENDPOINT, and names the key and variable of a bad value', () => {
    const env = { HOICHAN_JWT_SECRET: TEST_SECRET };
    const config = loadConfig({ env: { ...env, DATABASE_URL: 'postgres://hoichan@db.local/records', HOICHAN_FHIR_ENDPOINT: 'https://his.example.vn/fhir', HOICHAN_HUB_ID: 'hub-hcm-1' } });
    expect(config.records).to.include({ databaseUrl: 'postgres://hoichan@db.local/records', fhirEndpoint: 'https://his.example.vn/fhir', hubId: 'hub-hcm-1', retentionDays: 2190 });
    expect(() => loadConfig({ env: { ...env, DATABASE_URL: 'mysql://x/y' } })).to.throw(ConfigError, /records\.databaseUrl \(from DATABASE_URL\): must be a postgres:\/\/ or postgresql:\/\/ URL/);
    expect(() => loadConfig({ env, overrides: { records: { waveformWindowMs: 20_000, waveformEveryMs: 10_000 } } })).to.throw(ConfigError, /records\.waveformEveryMs: must be at least records\.waveformWindowMs/);
    expect(() => loadConfig({ env, overrides: { records: { retentionDays: 0 } } })).to.throw(ConfigError, /records\.retentionDays/);
  });

  describe('in a hub', () => {
    let hub: Hub | undefined;
    const dir = mkdtempSync(join(tmpdir(), 'hoichan-test-retention-'));
    after(async () => {
      await hub?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('deletes sessions that ended more than records.retentionDays ago, at start and when the job runs', async () => {
      // A first hub writes two old sessions and one recent one straight into its store.
      hub = await startTestHub({ records: { dir, retentionDays: 30 } });
      const store = hub.records!.store;
      const now = Date.now();
      const ids = { ancient: randomUUID(), month: randomUUID(), recent: randomUUID() };
      for (const [id, endedDaysAgo] of [
        [ids.ancient, 400],
        [ids.month, 31],
        [ids.recent, 29],
      ] as const) {
        await store.startSession({ id, conferenceId: 'ret', hubId: 'other-hub', startedAt: now - endedDaysAgo * DAY - 3600_000 });
        await store.endSession(id, now - endedDaysAgo * DAY, 'conference_closed');
      }
      expect(await hub.records!.purgeExpired(now)).to.equal(2);
      expect(await store.session(ids.ancient)).to.equal(undefined);
      expect(await store.session(ids.month)).to.equal(undefined);
      expect(await store.session(ids.recent)).to.not.equal(undefined);
      // Ten days on, the recent one has expired too: the next start's run deletes it.
      await hub.close();
      hub = undefined;
      const later = await startTestHub({ records: { dir, retentionDays: 19 } });
      hub = later;
      expect(await later.records!.store.session(ids.recent)).to.equal(undefined);
    });
  });
});
