// Thin links (issue 15): a site (Chromium page + agent) behind the user-space
// link emulator (src/links/), a specialist (Chromium) on a good link, per
// profile, with the hub's automatic bandwidth policy and with it off and the
// page in "Full video" (today's behaviour before the policy). Per run: what
// each side receives (audio lost and concealed %, video frames decoded per
// second, freeze time), the site's own RTT, bytes/s on the link each way,
// device reading latency (taken at the site -> received by a specialist's
// socket) p50/p99, and for `flaky` the time to recover after a 30 s outage.
//
//   npm run bench:links [-- --profiles commune-3g,island-satellite,edge,flaky --modes auto,full --duration 30 --outage 30]
//
// Writes bench-results/links.json. Loopback only; not part of the test suite.

import './support/quiet.js';
import { parseArgs } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import type { Hub } from '../../src/hub/Hub.js';
import { linkProfile } from '../../src/links/profiles.js';
import { launchChromium } from '../../test/support/browser.js';
import { startTestHub, TestClient, token, waitUntil } from '../../test/support/hub.js';
import { linkSite, openLinkedPage, openObservedPage, peerLinkStats, type LinkedSite, type PeerLinkStats } from '../../test/support/linkedSite.js';
import { SiteMonitor } from '../../test/support/siteMonitor.js';
import { percentile, printTable, sleep, writeResults } from './support/common.js';

const { values } = parseArgs({
  options: {
    profiles: { type: 'string', default: 'commune-3g,island-satellite,edge,flaky' },
    modes: { type: 'string', default: 'auto,full' },
    duration: { type: 'string', default: '30' },
    outage: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '6' },
  },
});
const profiles = values.profiles.split(',');
const modes = values.modes.split(',') as ('auto' | 'full')[];
const durationS = Number(values.duration);
const outageS = Number(values.outage);
const warmupS = Number(values.warmup);

const stateOf = (page: Page) => page.locator('#state').getAttribute('data-state');
const eventsOf = (page: Page) => page.evaluate(() => (globalThis as any).hoichan.events as { name: string; data: any }[]);

interface Sample {
  at: number;
  site: PeerLinkStats;
  specialist: PeerLinkStats;
  up: number;
  down: number;
}

async function sample(site: LinkedSite, sitePage: Page, specialist: Page): Promise<Sample> {
  const [s, p] = await Promise.all([peerLinkStats(sitePage), peerLinkStats(specialist)]);
  const link = site.link.stats();
  return { at: performance.now(), site: s, specialist: p, up: link.up.deliveredWireBytes, down: link.down.deliveredWireBytes };
}

function received(a: PeerLinkStats, b: PeerLinkStats, seconds: number) {
  const recv = b.audioIn.packetsReceived - a.audioIn.packetsReceived;
  const lost = b.audioIn.packetsLost - a.audioIn.packetsLost;
  const samples = b.audioIn.totalSamplesReceived - a.audioIn.totalSamplesReceived;
  return {
    audioLostPct: (100 * Math.max(0, lost)) / Math.max(1, recv + Math.max(0, lost)),
    concealedPct: (100 * (b.audioIn.concealedSamples - a.audioIn.concealedSamples)) / Math.max(1, samples),
    videoFps: (b.videoIn.framesDecoded - a.videoIn.framesDecoded) / seconds,
    freezeS: b.videoIn.totalFreezesDurationS - a.videoIn.totalFreezesDurationS,
  };
}

async function run(hub: Hub, browser: Browser, profileName: string, mode: 'auto' | 'full') {
  const conf = `bench-${profileName}-${mode}`;
  const profile = linkProfile(profileName);
  const site = await linkSite(hub, { profile, seed: 15, outages: null });
  const specialist = await openObservedPage(browser, `${hub.url}/conference/${conf}#token=${token('specialist', conf, 'BS Lan')}`);
  const sitePage = await openLinkedPage(browser, hub, site, `/site/${conf}#token=${token('site', conf, 'Tram Y te')}`);
  const observer = await TestClient.connect(hub.url, token('specialist', conf, 'Latency observer'));
  const monitor = new SiteMonitor(site.url, conf);
  const latencies: number[] = [];
  let readingsReceived = 0;
  const readingsAfter = (n: number) => readingsReceived >= n;
  try {
    await waitUntil(async () => (await stateOf(specialist.page)) === 'live' && (await stateOf(sitePage.page)) === 'live', 60_000, 'both pages live');
    await observer.ok('join', { conferenceId: conf });
    observer.socket.on('deviceReadings', (event: { readings: { rt: number; late?: boolean }[] }) => {
      const now = Date.now();
      for (const r of event.readings) latencies.push(now - r.rt);
      readingsReceived += event.readings.length;
    });
    await monitor.start();
    await sleep(warmupS * 1000);
    const a = await sample(site, sitePage.page, specialist.page);
    await sleep(durationS * 1000);
    const b = await sample(site, sitePage.page, specialist.page);
    const seconds = (b.at - a.at) / 1000;
    const atSite = received(a.site, b.site, seconds);
    const atSpecialist = received(a.specialist, b.specialist, seconds);
    let recoveryS: number | string = '';
    if (profile.outages) {
      site.link.setOutage(true);
      await sleep(outageS * 1000);
      const before = await sample(site, sitePage.page, specialist.page);
      site.link.setOutage(false);
      const upAt = performance.now();
      // Each path on its own: audio both ways, the site's video at the specialist, the outage's readings at a specialist.
      const recovered: Record<string, number> = {};
      const takenBeforeUp = monitor.taken.length;
      const mark = (what: string, ok: boolean) => {
        if (ok) recovered[what] ??= (performance.now() - upAt) / 1000;
        return ok;
      };
      try {
        await waitUntil(
          async () => {
            const now = await sample(site, sitePage.page, specialist.page);
            return [
              mark('audio@site', now.site.audioIn.packetsReceived > before.site.audioIn.packetsReceived + 25),
              mark('audio@spec', now.specialist.audioIn.packetsReceived > before.specialist.audioIn.packetsReceived + 25),
              mark('video@spec', now.specialist.videoIn.framesDecoded > before.specialist.videoIn.framesDecoded + 5),
              mark('readings', readingsAfter(takenBeforeUp)),
            ].every(Boolean);
          },
          60_000,
          'recovery',
        );
      } catch {
        // reported as what did not come back
      }
      recoveryS = ['audio@site', 'audio@spec', 'video@spec', 'readings'].map((k) => `${k} ${recovered[k]?.toFixed(1) ?? '>60'}`).join(', ');
    }
    const suspended = (await eventsOf(sitePage.page)).filter((e) => e.name === 'videoSuspended').length;
    return {
      profile: profileName,
      mode,
      siteRttMs: Math.round(b.site.rttMs),
      'site audio lost %': +atSite.audioLostPct.toFixed(1),
      'site concealed %': +atSite.concealedPct.toFixed(1),
      'site video fps': +atSite.videoFps.toFixed(1),
      'site freeze s': +atSite.freezeS.toFixed(1),
      'spec audio lost %': +atSpecialist.audioLostPct.toFixed(1),
      'spec concealed %': +atSpecialist.concealedPct.toFixed(1),
      'spec video fps': +atSpecialist.videoFps.toFixed(1),
      'spec freeze s': +atSpecialist.freezeS.toFixed(1),
      'down kb/s': Math.round(((b.down - a.down) * 8) / seconds / 1000),
      'up kb/s': Math.round(((b.up - a.up) * 8) / seconds / 1000),
      'readings p50 ms': Math.round(percentile(latencies, 0.5)),
      'readings p99 ms': Math.round(percentile(latencies, 0.99)),
      'video suspended': suspended,
      'recovery s': recoveryS,
    };
  } finally {
    await monitor.stop().catch(() => undefined);
    observer.close();
    await sitePage.page.context().close();
    await specialist.page.context().close();
    site.link.close();
  }
}

const browser = await launchChromium();
const rows: Record<string, unknown>[] = [];
try {
  for (const mode of modes) {
    // "full": the policy off and the page's default Full video: every viewer gets what it asks for.
    const hub = await startTestHub({ media: { bandwidthPolicy: mode === 'auto' } });
    try {
      for (const profile of profiles) {
        const t0 = performance.now();
        const row = await run(hub, browser, profile, mode);
        rows.push(row);
        // Each row as it comes, so a run cut short still leaves its figures.
        console.log(`  ${profile} / ${mode}: ${((performance.now() - t0) / 1000).toFixed(0)} s ${JSON.stringify(row)}`);
      }
    } finally {
      await hub.close();
    }
  }
} finally {
  await browser.close();
}
const byProfile = [...rows].sort((x, y) => profiles.indexOf(String(x.profile)) - profiles.indexOf(String(y.profile)));
const table = printTable(`thin links: ${durationS} s per run after ${warmupS} s warm-up; flaky: recovery after a ${outageS} s outage`, byProfile);
writeResults('links', { durationS, warmupS, outageS, rows: byProfile, table });
process.exit(0);
