// The agent's hub and journal config sections, and the clock and backoff maths.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROJECT_ROOT } from '../support/hub.js';
import { agentConfigOf, loadAgentConfig } from '../../src/agent/config.js';
import { Backoff } from '../../src/common/backoff.js';
import { bestEstimate } from '../../src/agent/uplink/clock.js';
import { SiteConfigError, parseSiteConfig } from '../../src/devices/siteConfig.js';
import { expect } from './uplink-helpers.js';

const EXAMPLE = fileURLToPath(new URL('../../../config/site.example.json', import.meta.url));

describe('uplink: agent config, clock, backoff', () => {
  it('loads config/site.example.json with defaults filled in', async () => {
    const config = await loadAgentConfig(EXAMPLE);
    expect(config.hub).to.include({ url: 'http://127.0.0.1:3000', catchUpReadingsPerSecond: 2000, windowBatches: 4 });
    expect(config.journal).to.include({ fsync: 'interval', fsyncIntervalMs: 20 });
  });

  it('names every bad key of hub and journal', () => {
    const site = parseSiteConfig({ siteId: 's', conferenceId: 'c', hub: { url: 'not a url', token: 'x', tokenFile: '/y', catchUp: 3 }, journal: { fsync: 'sometimes' }, devices: [] });
    let error: unknown;
    try {
      agentConfigOf(site, 'site.json');
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(SiteConfigError);
    const problems = (error as SiteConfigError).problems.join('\n');
    expect(problems).to.match(/hub\.url: Invalid url/);
    expect(problems).to.include("hub: Unrecognized key(s) in object: 'catchUp'");
    expect(problems).to.include('hub: Give exactly one of token or tokenFile');
    expect(problems).to.match(/journal\.dir: Required/);
    expect(problems).to.match(/journal\.fsync: Invalid enum value/);
  });

  it('hub.url may list the hubs of a cluster; each must pass the transport rule, named by its index', () => {
    const ok = agentConfigOf(parseSiteConfig({ siteId: 's', conferenceId: 'c', hub: { url: ['https://hn-1.example.vn', 'http://127.0.0.1:3000'], token: 'x' }, journal: { dir: '/tmp/j' }, devices: [] }), 'site.json');
    expect(ok.hub.url).to.deep.equal(['https://hn-1.example.vn', 'http://127.0.0.1:3000']);
    let error: unknown;
    try {
      agentConfigOf(parseSiteConfig({ siteId: 's', conferenceId: 'c', hub: { url: ['https://hn-1.example.vn', 'http://hn-2.example.vn'], token: 'x' }, journal: { dir: '/tmp/j' }, devices: [] }), 'site.json');
    } catch (err) {
      error = err;
    }
    expect((error as SiteConfigError).problems.join('\n')).to.match(/hub\.url\[1\]: must be https:\/\/ for a hub on another machine/);
  });

    it('clock: offset from the exchange with the smallest round trip', () => {
    // Hub 1000 ms ahead; the second exchange had a slow return path.
    const estimate = bestEstimate([
      { t0: 0, t1: 1010, t2: 1011, t3: 21 },
      { t0: 100, t1: 1110, t2: 1111, t3: 300 },
      { t0: 400, t1: 1402, t2: 1402, t3: 404 },
    ])!;
    expect(estimate).to.deep.equal({ offsetMs: 1000, rttMs: 4 });
  });

  it('backoff: exponential with full jitter, capped, reset after success', () => {
    const max = new Backoff({ minMs: 500, maxMs: 30_000, jitter: 'full', random: () => 1 });
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(() => max.next())).to.deep.equal([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    max.reset();
    expect(max.next()).to.equal(500);
    const low = new Backoff({ minMs: 500, maxMs: 30_000, jitter: 'full', random: () => 0 });
    expect(low.next()).to.equal(250);
  });

  it('hoichan agent: usage errors name the problem and exit 2', () => {
    const run = (args: string[]) => spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'hoichan.js'), 'agent', ...args], { encoding: 'utf8', env: { ...process.env, HOICHAN_LOG_LEVEL: 'silent' } });
    const missing = run([]);
    expect(missing.status).to.equal(2);
    expect(missing.stderr).to.include('--config is required');
    const file = join(mkdtempSync(join(tmpdir(), 'hoichan-agent-cli-')), 'site.json');
    writeFileSync(file, JSON.stringify({ siteId: 's', conferenceId: 'c', hub: { url: 'http://127.0.0.1:1' }, journal: { dir: '/tmp/x' }, devices: [] }));
    const bad = run(['--config', file]);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.include('hub: Give exactly one of token or tokenFile');
  });
});
