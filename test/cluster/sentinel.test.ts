import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hub } from '../../src/hub/Hub.js';
import { freePort } from '../agent/uplink-helpers.js';
import { TestClient, token, waitUntil } from '../support/hub.js';
import { TestRedis } from '../support/redis.js';
import { startClusterHub } from './helpers.js';

describe('cluster behind Redis Sentinel (redis-sentinel:// URL)', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let sentinel: ChildProcess | undefined;
  const hubs: Hub[] = [];
  const clients: TestClient[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'hoichan-sentinel-'));

  before(async () => {
    redis = await TestRedis.start();
    const port = await freePort();
    // redis-server in sentinel mode (the same binary), watching the test Redis as master "hoichan".
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(conf, `port ${port}\nbind 127.0.0.1\nsentinel monitor hoichan 127.0.0.1 ${redis.port} 1\n`);
    sentinel = spawn('/usr/bin/redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    const url = `redis-sentinel://127.0.0.1:${port}/hoichan`;
    await new Promise((r) => setTimeout(r, 500));
    hubs.push(await startClusterHub(url, 'hub-s1'), await startClusterHub(url, 'hub-s2'));
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const h of hubs) await h.close();
    sentinel?.kill('SIGTERM');
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds the master through the sentinel: directory, revocations, history and the bus all work', async () => {
    const [a, b] = hubs as [Hub, Hub];
    await waitUntil(() => a.cluster!.directory.hub('hub-s2') !== undefined, 5000, 'both hubs in the directory');
    const onA = await TestClient.connect(a.url, token('specialist', 'sentinel-case', 'Dr A'));
    const onB = await TestClient.connect(b.url, token('site', 'sentinel-case', 'Site B'));
    clients.push(onA, onB);
    const joined = await onA.ok('join', { conferenceId: 'sentinel-case' });
    const there = await onB.ok('join', { conferenceId: 'sentinel-case' });
    expect(there.peers.map((p: { peerId: string; hubId?: string }) => [p.peerId, p.hubId])).to.deep.equal([[joined.peerId, 'hub-s1']]);
    expect(a.streams!.storeKind).to.equal('redis');
  });
});
