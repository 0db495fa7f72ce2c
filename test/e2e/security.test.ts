// Issue 10 in Chromium: the page works under the hub's strict CSP, a link's
// #token= leaves the address bar and history before anything loads and never
// reaches the hub (URL or Referer), an old ?token= link is refused, a foreign
// page cannot frame the conference view, and a conference runs end to end over
// HTTPS/WSS with a certificate openssl makes at test time.

import { expect } from 'chai';
import type { IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import type { Hub } from '../../src/hub/Hub.js';
import { launchChromium, openPage, screenshot, pagePeerId as peerIdOf } from '../support/browser.js';
import { startTestHub, token, waitUntil } from '../support/hub.js';
import { makeTestCertificate, type TestCertificate } from '../support/tls.js';

const stateOf = (page: Page) => page.locator('#state').getAttribute('data-state');
const statsOf = (page: Page) => page.evaluate(() => (globalThis as any).hoichan.stats() as Promise<{ peerId: string; kind: string; framesDecoded: number }[]>);

interface Seen {
  by: string;
  url: string;
  referer: string;
}

/** Every HTTP request and WebSocket upgrade the hub receives, with its Referer. */
function recordHubRequests(hub: Hub): Seen[] {
  const seen: Seen[] = [];
  const record = (by: string) => (req: IncomingMessage) => seen.push({ by, url: req.url ?? '', referer: req.headers.referer ?? '' });
  hub.httpServer.on('request', record('hub'));
  hub.httpServer.on('upgrade', record('hub upgrade'));
  return seen;
}

/** The same from the browser's side: every request and WebSocket the page opens. */
function recordPageRequests(page: Page): Seen[] {
  const seen: Seen[] = [];
  page.on('request', (request) => seen.push({ by: 'page', url: request.url(), referer: request.headers()['referer'] ?? '' }));
  page.on('websocket', (socket) => seen.push({ by: 'page websocket', url: socket.url(), referer: '' }));
  return seen;
}

describe('web security in Chromium', function () {
  this.timeout(120_000);
  let hub: Hub;
  let browser: Browser;
  let hubSeen: Seen[];

  before(async () => {
    hub = await startTestHub();
    hubSeen = recordHubRequests(hub);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await hub?.close();
  });

  it('a #token= link: the token leaves the URL and history at once and reaches the hub in no URL or Referer', async () => {
    const secret = token('specialist', 'sec', 'BS Lan');
    hubSeen.length = 0;
    const context = await browser.newContext();
    const page = await context.newPage();
    const consoleErrors: string[] = [];
    page.on('console', (msg) => msg.type() === 'error' && consoleErrors.push(msg.text()));
    page.on('pageerror', (err) => consoleErrors.push(err.message));
    const pageSeen = recordPageRequests(page);

    const response = await page.goto(`${hub.url}/conference/sec#token=${secret}`);
    expect(response?.headers()['referrer-policy']).to.equal('no-referrer');
    await waitUntil(async () => (await stateOf(page)) === 'live', 20_000, 'specialist live');
    expect(await peerIdOf(page)).to.not.equal('');

    expect(page.url()).to.equal(`${hub.url}/conference/sec`);
    expect(await page.evaluate(() => (globalThis as any).location.href as string)).to.not.include(secret);
    // Session history: the new tab's about:blank, then this page, replaced (not pushed); no entry holds the token.
    const entries = await page.evaluate(() => ({ length: (globalThis as any).history.length as number, urls: (globalThis as any).navigation.entries().map((e: { url: string }) => e.url) as string[] }));
    expect(entries.length).to.equal(2);
    expect(entries.urls).to.deep.equal([`${hub.url}/conference/sec`]);
    // The page loaded its stylesheet and icon (added by the script) and opened its socket.
    const paths = pageSeen.map((s) => new URL(s.url).pathname);
    expect(paths).to.include.members(['/conference/sec', '/app.js', '/app.css', '/favicon.svg', '/socket.io/']);
    expect(hubSeen.map((s) => s.url.split('?')[0])).to.include.members(['/conference/sec', '/app.js', '/app.css', '/socket.io/']);
    for (const seen of [...pageSeen, ...hubSeen]) {
      expect(`${seen.url} ${seen.referer}`, `${seen.by} ${seen.url}`).not.to.include(secret.split('.')[2]!);
      expect(seen.url, seen.by).not.to.include('token=');
      expect(seen.referer, `${seen.by}: no Referer at all (no-referrer)`).to.equal('');
    }
    // Strict CSP, and the page broke none of it (a violation is a console error).
    expect(consoleErrors).to.deep.equal([]);
    // The CSP is in force: an injected inline script does not run, a style attribute does not apply,
    // a style set through the CSSOM (as web/src/ui/dom.ts does) does.
    const enforced = await page.evaluate(async () => {
      const doc = (globalThis as any).document;
      const violations: string[] = [];
      doc.addEventListener('securitypolicyviolation', (e: { violatedDirective: string }) => violations.push(e.violatedDirective));
      const script = doc.createElement('script');
      script.textContent = 'globalThis.injected = true';
      doc.body.append(script);
      const attr = doc.createElement('span');
      attr.setAttribute('style', 'color: rgb(1, 2, 3)');
      const cssom = doc.createElement('span');
      cssom.style.cssText = 'color: rgb(4, 5, 6)';
      doc.body.append(attr, cssom);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const color = (el: unknown) => (globalThis as any).getComputedStyle(el).color as string;
      const result = { injected: (globalThis as any).injected === true, attr: color(attr), cssom: color(cssom), violations };
      script.remove();
      attr.remove();
      cssom.remove();
      return result;
    });
    expect(enforced.injected).to.equal(false);
    expect(enforced.attr).to.not.equal('rgb(1, 2, 3)');
    expect(enforced.cssom).to.equal('rgb(4, 5, 6)');
    expect(enforced.violations).to.include.members(['script-src-elem', 'style-src-attr']);
    consoleErrors.length = 0; // those two refusals were the point

    // Leave and come back: the history entry still has no token, and the token is
    // kept for this tab (sessionStorage), so the view joins again.
    await page.goto(`${hub.url}/healthz`);
    await page.goBack();
    expect(page.url()).to.equal(`${hub.url}/conference/sec`);
    await waitUntil(async () => (await stateOf(page)) === 'live', 20_000, 'live again after back');
    // (Entries other than the current one show a null url under no-referrer: the Navigation API hides them too.)
    const urls = await page.evaluate(() => (globalThis as any).navigation.entries().map((e: { url: string | null }) => e.url) as (string | null)[]);
    expect(urls).to.include(`${hub.url}/conference/sec`);
    for (const url of urls) expect(url ?? '').not.to.include(secret);
    await screenshot(page, 'security-fragment-token');
    await context.close();
  });

  it('an old ?token= link is refused: the page says the link format changed, and the token is gone from the URL', async () => {
    const secret = token('specialist', 'sec-old', 'BS Minh');
    const { page, consoleErrors } = await openPage(browser, `${hub.url}/conference/sec-old?token=${secret}`);
    await waitUntil(async () => (await stateOf(page)) === 'error', 10_000, 'error state');
    expect(page.url()).to.equal(`${hub.url}/conference/sec-old`);
    expect(await page.locator('#message').textContent()).to.match(/old format \(\?token=…\).*#token=/);
    const urls = await page.evaluate(() => (globalThis as any).navigation.entries().map((e: { url: string }) => e.url) as string[]);
    expect(urls).to.deep.equal([`${hub.url}/conference/sec-old`]);
    expect(hub.conferences.list().some((c) => c.id === 'sec-old')).to.equal(false);
    expect(consoleErrors).to.deep.equal([]);
    await page.context().close();
  });

  it('a foreign page on another loopback port cannot frame the conference view', async () => {
    const secret = token('specialist', 'sec-frame', 'Victim');
    const foreign: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(`<!doctype html><title>evil</title><iframe id="victim" width="800" height="600" src="${hub.url}/conference/sec-frame#token=${secret}"></iframe>`);
    });
    await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve));
    const foreignUrl = `http://127.0.0.1:${(foreign.address() as AddressInfo).port}/`;
    try {
      const context = await browser.newContext();
      const page = await context.newPage();
      const messages: string[] = [];
      page.on('console', (msg) => messages.push(msg.text()));
      await page.goto(foreignUrl);
      await waitUntil(() => messages.some((m) => /frame-ancestors/.test(m)), 10_000, 'the CSP refusal in the console');
      const frame = page.frames().find((f) => f !== page.mainFrame());
      expect(frame, 'the iframe').to.not.equal(undefined);
      // Chromium replaces a refused frame with its error page: none of the hub's page runs in it.
      await waitUntil(() => frame!.url().startsWith('chrome-error://'), 10_000, 'the frame to show the error page');
      expect(await frame!.evaluate(() => (globalThis as any).document.getElementById('app') as unknown)).to.equal(null);
      expect(hub.conferences.list().some((c) => c.id === 'sec-frame')).to.equal(false);
      await context.close();
    } finally {
      foreign.close();
    }
  });
});

describe('web security in Chromium: a conference over HTTPS/WSS', function () {
  this.timeout(120_000);
  let hub: Hub;
  let browser: Browser;
  let certificate: TestCertificate;

  before(async () => {
    certificate = makeTestCertificate();
    hub = await startTestHub({ tls: { cert: certificate.certPath, key: certificate.keyPath } });
    // Chromium trusts exactly this test certificate's key, nothing else.
    browser = await launchChromium([`--ignore-certificate-errors-spki-list=${certificate.spki}`]);
  });
  after(async () => {
    await browser?.close();
    await hub?.close();
    certificate?.remove();
  });

  it('a specialist and a site join over https and wss and decode each other\'s video', async () => {
    expect(hub.url).to.match(/^https:/);
    const peers: { page: Page; consoleErrors: string[]; sockets: string[]; hsts?: string }[] = [];
    for (const [role, name] of [['specialist', 'BS Lan'], ['site', 'Tram Y te']] as const) {
      const context = await browser.newContext();
      const page = await context.newPage();
      const consoleErrors: string[] = [];
      const sockets: string[] = [];
      page.on('console', (msg) => msg.type() === 'error' && consoleErrors.push(msg.text()));
      page.on('pageerror', (err) => consoleErrors.push(err.message));
      page.on('websocket', (socket) => sockets.push(socket.url()));
      const response = await page.goto(`${hub.url}/${role === 'site' ? 'site' : 'conference'}/tls#token=${token(role, 'tls', name)}`);
      peers.push({ page, consoleErrors, sockets, hsts: response?.headers()['strict-transport-security'] });
    }
    const ids = await Promise.all(peers.map(({ page }) => waitUntil(async () => (await peerIdOf(page)) !== '', 20_000, 'join').then(() => peerIdOf(page))));
    for (const [i, { page }] of peers.entries()) {
      const other = ids[1 - i]!;
      await waitUntil(async () => (await statsOf(page)).some((s) => s.peerId === other && s.kind === 'video' && s.framesDecoded > 0), 30_000, `peer ${i} to decode the other's video`);
    }
    for (const peer of peers) {
      expect(await peer.page.evaluate(() => (globalThis as any).location.protocol as string)).to.equal('https:');
      expect(peer.hsts).to.equal('max-age=31536000');
      expect(peer.sockets.length).to.be.greaterThan(0);
      for (const url of peer.sockets) expect(url).to.match(/^wss:\/\/127\.0\.0\.1:\d+\/socket\.io\//);
      expect(peer.consoleErrors).to.deep.equal([]);
    }
    await screenshot(peers[0]!.page, 'security-tls-conference');
  });
});
