import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PROJECT_ROOT } from './hub.js';

export const ARTIFACTS_DIR = join(PROJECT_ROOT, 'test-artifacts');

/** Debian's Chromium, headless, with fake camera and microphone; extraArgs e.g. to trust a test certificate. */
export async function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
      ...extraArgs,
    ],
  });
}

/** A page that records its console errors, so a test can assert there were none. */
export async function openPage(browser: Browser, url: string): Promise<{ page: Page; consoleErrors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(msg.text());
  });
  page.on('pageerror', (err) => consoleErrors.push(err.message));
  await page.goto(url);
  return { page, consoleErrors };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

/** One row of the page's `window.hoichan.stats()` (web/src/telemetry.ts, ConsumerStatsRow): what it receives per consumer. */
export interface PageConsumerStats {
  consumerId: string;
  producerId: string;
  peerId: string;
  kind: string;
  source: string;
  framesDecoded: number;
  packetsReceived: number;
  bytesReceived: number;
}

/** The web client's receive stats per consumer, read through its test hook. */
export const pageStats = (page: Page) => page.evaluate(() => (globalThis as any).hoichan.stats() as Promise<PageConsumerStats[]>);

/** The page's peer id once joined ('' before). */
export const pagePeerId = (page: Page) => page.evaluate(() => (globalThis as any).hoichan.peerId as string);
