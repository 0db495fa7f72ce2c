// Join-latency bench: headless Chromium peers join one after another and we
// time join request -> first decoded remote video frame (requestVideoFrameCallback),
// against Hoichan (its real web page) and a bare mediasoup + mediasoup-client page,
// interleaved in the same run so both see the same machine load. An anchor peer
// in each conference publishes camera + microphone; each joiner leaves before the next.
//   node dist/scripts/bench/join-latency.js [--joins 15]
// Writes bench-results/join-latency.json.

import './support/quiet.js';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { loadConfig } from '../../src/config/load.js';
import { WEB_ROOT } from '../../src/http/app.js';
import { Authenticator } from '../../src/auth/index.js';
import { launchChromium } from '../../test/support/browser.js';
import { startBareServer } from './bare/server.js';
import { PROJECT_ROOT, percentile, printTable, sleep, writeResults } from './support/common.js';

const { values } = parseArgs({ options: { joins: { type: 'string', default: '15' }, timeout: { type: 'string', default: '20' } } });
const joins = Number(values.joins);
const timeoutMs = Number(values.timeout) * 1000;
const SECRET = 'bench-secret-0123456789abcdef-0123456789abcdefghi';

if (!existsSync(join(WEB_ROOT, 'index.html'))) execFileSync('node', [join(PROJECT_ROOT, 'scripts', 'build-web.mjs')], { stdio: 'inherit' });

const { Hub } = await import('../../src/hub/Hub.js');
const hub = await Hub.start(
  loadConfig({
    env: {},
    overrides: {
      http: { listenIp: '127.0.0.1', port: 0 },
      media: { numWorkers: 1, listenIp: '127.0.0.1', webRtcServerPort: 31700, rtcMinPort: 30000, rtcMaxPort: 30999, workerLogLevel: 'error' },
      auth: { jwtSecret: SECRET, demo: false },
    },
  }),
);
const bare = await startBareServer(39800);

const hoichanUrl = (name: string) =>
  `${hub.url}/?conference=join-bench&name=${encodeURIComponent(name)}#token=${Authenticator.forSecret(SECRET).sign({ kind: 'person', sub: name, name, role: 'specialist', conf: 'join-bench', ttlSeconds: 3600 })}`;

type Timing = { joinRequestedAt: number; firstRemoteFrameAt: number; joinedAt?: number; error?: string };
const timingOf = (page: Page) =>
  page.evaluate(() => {
    const t = (globalThis as any).hoichan;
    return t ? ({ joinRequestedAt: t.joinRequestedAt, firstRemoteFrameAt: t.firstRemoteFrameAt, joinedAt: t.joinedAt, error: t.error } as Timing) : undefined;
  });

async function openPeer(browser: Browser, url: string): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(url);
  return page;
}

/** Opens a joiner, waits for its first decoded remote frame, closes it; returns ms or NaN on timeout. */
async function timeOneJoin(browser: Browser, url: string): Promise<{ firstFrameMs: number; joinAckMs: number }> {
  const page = await openPeer(browser, url);
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const t = await timingOf(page);
      if (t && t.firstRemoteFrameAt > 0) return { firstFrameMs: t.firstRemoteFrameAt - t.joinRequestedAt, joinAckMs: (t.joinedAt ?? NaN) - t.joinRequestedAt };
      if (t?.error) throw new Error(t.error);
      if (Date.now() > deadline) return { firstFrameMs: NaN, joinAckMs: NaN };
      await sleep(25);
    }
  } finally {
    await page.context().close();
  }
}

const browser = await launchChromium();
const samples: Record<string, { firstFrameMs: number[]; joinAckMs: number[]; timeouts: number }> = {
  hoichan: { firstFrameMs: [], joinAckMs: [], timeouts: 0 },
  'bare-mediasoup': { firstFrameMs: [], joinAckMs: [], timeouts: 0 },
};
try {
  await openPeer(browser, hoichanUrl('anchor'));
  await openPeer(browser, `${bare.url}/`);
  await sleep(3000); // anchors publish before the first joiner arrives
  for (let i = 0; i < joins; i++) {
    for (const [target, url] of [
      ['hoichan', hoichanUrl(`joiner-${i}`)],
      ['bare-mediasoup', `${bare.url}/`],
    ] as const) {
      const { firstFrameMs, joinAckMs } = await timeOneJoin(browser, url);
      const bucket = samples[target]!;
      if (Number.isNaN(firstFrameMs)) bucket.timeouts++;
      else {
        bucket.firstFrameMs.push(firstFrameMs);
        bucket.joinAckMs.push(joinAckMs);
      }
      console.log(`  ${target} join ${i + 1}/${joins}: ${Number.isNaN(firstFrameMs) ? 'timeout' : `${firstFrameMs.toFixed(0)} ms`}`);
      await sleep(300);
    }
  }
} finally {
  await browser.close();
  await hub.close();
  await bare.close();
}

const rows = Object.entries(samples).map(([target, s]) => ({
  target,
  joins: s.firstFrameMs.length,
  timeouts: s.timeouts,
  'join ack p50 ms': percentile(s.joinAckMs, 0.5),
  'first frame p50 ms': percentile(s.firstFrameMs, 0.5),
  'first frame p95 ms': percentile(s.firstFrameMs, 0.95),
  'first frame max ms': Math.max(...s.firstFrameMs),
}));
printTable('Join latency: join request -> first decoded remote video frame (headless Chromium, fake camera)', rows);
const ratio = rows[0]!['first frame p50 ms'] / rows[1]!['first frame p50 ms'];
console.log(`\nHoichan p50 / bare p50 = ${ratio.toFixed(2)}`);
writeResults('join-latency', { joins, rows, hoichanOverBareP50: ratio, samples });
process.exit(0);
