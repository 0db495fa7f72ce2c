// Web client load time and bundle size. Opens a site page (the publisher),
// then a specialist page N times in fresh browser contexts (cold cache) and
// reads window.hoichan: navigation start -> joined, -> first decoded remote
// video frame; plus the bundle's raw and gzip sizes. Not part of the test suite.
//
//   npm run bench:web [-- --runs 5]

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { launchChromium } from '../../test/support/browser.js';
import { PROJECT_ROOT, startTestHub, token, waitUntil } from '../../test/support/hub.js';

process.env.HOICHAN_LOG_LEVEL ??= 'silent';
const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);

const webDir = join(PROJECT_ROOT, 'dist', 'web');
const sizes = Object.fromEntries(
  ['app.js', 'app.css', 'index.html'].map((file) => {
    const bytes = readFileSync(join(webDir, file));
    return [file, { rawKiB: +(bytes.length / 1024).toFixed(1), gzipKiB: +(gzipSync(bytes, { level: 9 }).length / 1024).toFixed(1) }];
  }),
);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

const hub = await startTestHub();
const browser = await launchChromium();
const timings: { domContentLoaded: number; joined: number; firstRemoteFrame: number }[] = [];
try {
  const siteContext = await browser.newContext();
  const site = await siteContext.newPage();
  await site.goto(`${hub.url}/site/bench#token=${token('site', 'bench', 'Bench site')}`);
  await waitUntil(async () => (await site.evaluate(() => (globalThis as any).hoichan.peerId)) !== '', 20_000, 'site join');

  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    const page = await context.newPage();
    await page.goto(`${hub.url}/conference/bench#token=${token('specialist', 'bench', `Bench specialist ${i}`)}`);
    await waitUntil(async () => (await page.evaluate(() => (globalThis as any).hoichan.firstRemoteFrameAt)) > 0, 30_000, 'first remote frame');
    timings.push(
      await page.evaluate(() => {
        const h = (globalThis as any).hoichan;
        const nav = (globalThis as any).performance.getEntriesByType('navigation')[0];
        return { domContentLoaded: Math.round(nav.domContentLoadedEventEnd), joined: Math.round(h.joinedAt), firstRemoteFrame: Math.round(h.firstRemoteFrameAt) };
      }),
    );
    await context.close();
  }
} finally {
  await browser.close();
  await hub.close();
}

const result = {
  date: new Date().toISOString(),
  runs,
  bundle: sizes,
  medianMs: {
    domContentLoaded: median(timings.map((t) => t.domContentLoaded)),
    joined: median(timings.map((t) => t.joined)),
    firstRemoteFrame: median(timings.map((t) => t.firstRemoteFrame)),
  },
  timings,
};
mkdirSync(join(PROJECT_ROOT, 'bench-results'), { recursive: true });
writeFileSync(join(PROJECT_ROOT, 'bench-results', 'web-load.json'), JSON.stringify(result, null, 2));
console.log(JSON.stringify({ bundle: result.bundle, medianMs: result.medianMs }, null, 2));
