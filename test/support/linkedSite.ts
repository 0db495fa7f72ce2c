import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Hub } from '../../src/hub/Hub.js';
import { LinkEmulator, type LinkEmulatorOptions } from '../../src/links/LinkEmulator.js';

/**
 * A site behind an emulated link (docs/LINKS.md): everything the site's
 * browser and agent exchange with the hub goes through one LinkEmulator.
 *
 * - Media: the page's RTCPeerConnection is given the relay's ports in place of
 *   the WebRtcServer's (an init script rewrites the hub's host candidates in
 *   every remote SDP mediasoup-client sets), UDP and TCP. The hub sees the
 *   relay's per-client upstream sockets; the browser knows no other path.
 * - Signaling: the page is opened on the relay's HTTP port, so socket.io (and
 *   the readings it carries) crosses the link. Its static files (app.js,
 *   app.css, the icon) are fetched from the hub directly, as a site's browser
 *   has them cached: 300 KiB at 120 kb/s would spend a test's budget on load.
 * - Uplink: `uplinkUrl` is the same relay, for a site agent.
 */
export interface LinkedSite {
  link: LinkEmulator;
  /** The hub's HTTP origin through the link. */
  url: string;
  /** Hub WebRtcServer port → relay ports the page sees instead. */
  media: { hubPort: number; udp: number; tcp: number }[];
}

export async function linkSite(hub: Hub, options: LinkEmulatorOptions): Promise<LinkedSite> {
  const link = new LinkEmulator(options);
  const host = '127.0.0.1';
  const http = await link.relayTcp({ host, port: hub.port });
  const media = [];
  for (const worker of hub.pool.workers) {
    const hubPort = worker.webRtcPort;
    media.push({ hubPort, udp: await link.relayUdp({ host, port: hubPort }), tcp: await link.relayTcp({ host, port: hubPort }) });
  }
  return { link, url: `http://${host}:${http}`, media };
}

// The hub's tsconfig has no DOM lib: the little of WebRTC the page-side functions use.
interface SessionDescription {
  type: string;
  sdp?: string;
}
interface PeerConnection {
  connectionState: string;
  getStats(): Promise<Map<string, any>>;
  setRemoteDescription(description?: SessionDescription): Promise<void>;
}
declare const RTCPeerConnection: { prototype: PeerConnection };

/** Rewrites `a=candidate:` lines of remote SDPs: the hub's ports become the relay's. Runs in the page. */
function steerCandidates(media: { hubPort: number; udp: number; tcp: number }[]): void {
  const proto = RTCPeerConnection.prototype;
  const original = proto.setRemoteDescription;
  // Kept for linkStats(): the tests read what the peer itself measures.
  const pcs: PeerConnection[] = ((globalThis as unknown as { __linkPcs: PeerConnection[] }).__linkPcs = []);
  const rewrite = (sdp: string) =>
    sdp.replace(/^(a=candidate:\S+ \d+ )(udp|tcp)( \d+ \S+ )(\d+)( typ host.*)$/gim, (line, head, protocol: string, mid, port: string, tail) => {
      const entry = media.find((m) => m.hubPort === Number(port));
      if (!entry) return line;
      return `${head}${protocol}${mid}${protocol.toLowerCase() === 'udp' ? entry.udp : entry.tcp}${tail}`;
    });
  proto.setRemoteDescription = function (this: PeerConnection, description?: SessionDescription) {
    if (!pcs.includes(this)) pcs.push(this);
    const steered = description?.sdp ? { type: description.type, sdp: rewrite(description.sdp) } : description;
    return original.call(this, steered as SessionDescription);
  } as typeof proto.setRemoteDescription;
}

/** A browser context whose pages reach the hub only through the site's link. */
export async function linkedContext(browser: Browser, hub: Hub, site: LinkedSite): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  await context.addInitScript(steerCandidates, site.media);
  // Static files straight from the hub (a cached page); the HTML, API and socket.io go through the link.
  await context.route(/\/(app\.js|app\.css|favicon[^/]*|icon[^/]*)(\?.*)?$/, async (route) => {
    const url = new URL(route.request().url());
    const response = await route.fetch({ url: `${hub.url}${url.pathname}${url.search}` });
    await route.fulfill({ response });
  });
  return context;
}

/** A page on a good link whose peer connections peerLinkStats() can read (nothing rewritten). */
export async function openObservedPage(browser: Browser, url: string): Promise<{ page: Page; consoleErrors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  await context.addInitScript(steerCandidates, []);
  return openIn(context, url);
}

async function openIn(context: BrowserContext, url: string): Promise<{ page: Page; consoleErrors: string[] }> {
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(msg.text());
  });
  page.on('pageerror', (err) => consoleErrors.push(err.message));
  await page.goto(url);
  return { page, consoleErrors };
}

export async function openLinkedPage(browser: Browser, hub: Hub, site: LinkedSite, path: string): Promise<{ page: Page; consoleErrors: string[] }> {
  return openIn(await linkedContext(browser, hub, site), `${site.url}${path}`);
}

/** What the site's browser itself measures, summed over its peer connections (getStats). */
export interface PeerLinkStats {
  /** Largest current RTT of a nominated candidate pair (ms): the link's delay as the peer sees it. */
  rttMs: number;
  /** Protocols of the nominated pairs' local candidates ('udp' / 'tcp'). */
  protocols: string[];
  audioIn: { packetsReceived: number; packetsLost: number; concealedSamples: number; totalSamplesReceived: number };
  videoIn: { framesDecoded: number; freezeCount: number; totalFreezesDurationS: number; bytesReceived: number };
  bytesReceived: number;
  bytesSent: number;
  /** The browser's own estimate of what it may send (send transport), bits/s. */
  availableOutgoingBitrate: number;
}

export async function peerLinkStats(page: Page): Promise<PeerLinkStats> {
  return page.evaluate(async () => {
    const pcs = (globalThis as unknown as { __linkPcs?: PeerConnection[] }).__linkPcs ?? [];
    const out = {
      rttMs: 0,
      protocols: [] as string[],
      audioIn: { packetsReceived: 0, packetsLost: 0, concealedSamples: 0, totalSamplesReceived: 0 },
      videoIn: { framesDecoded: 0, freezeCount: 0, totalFreezesDurationS: 0, bytesReceived: 0 },
      bytesReceived: 0,
      bytesSent: 0,
      availableOutgoingBitrate: 0,
    };
    // Receive counters are kept per RTP stream as last seen, so a stream that ends (a transport
    // rebuilt after an outage, a consumer closed) still counts what it received: totals only grow.
    const g = globalThis as unknown as { __linkStreams?: Map<string, { kind: string; v: number[] }> };
    const streams = (g.__linkStreams ??= new Map());
    for (const [i, pc] of pcs.entries()) {
      if (pc.connectionState === 'closed') continue;
      const report = await pc.getStats();
      const byId = new Map<string, any>();
      report.forEach((s: any) => byId.set(s.id, s));
      // The pair in use is the transport's selected one (a nominated pair's state flickers during consent checks).
      const selected = new Set<string>();
      report.forEach((s: any) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) selected.add(s.selectedCandidatePairId);
      });
      report.forEach((s: any) => {
        if (s.type === 'candidate-pair' && (selected.has(s.id) || (selected.size === 0 && s.nominated && s.state === 'succeeded'))) {
          if (typeof s.currentRoundTripTime === 'number') out.rttMs = Math.max(out.rttMs, s.currentRoundTripTime * 1000);
          const local = byId.get(s.localCandidateId);
          if (local?.protocol) out.protocols.push(local.protocol);
          out.bytesReceived += s.bytesReceived ?? 0;
          out.bytesSent += s.bytesSent ?? 0;
          if (typeof s.availableOutgoingBitrate === 'number') out.availableOutgoingBitrate = Math.max(out.availableOutgoingBitrate, s.availableOutgoingBitrate);
        } else if (s.type === 'inbound-rtp' && s.kind === 'audio') {
          streams.set(`${i}:${s.id}`, { kind: 'audio', v: [s.packetsReceived ?? 0, s.packetsLost ?? 0, s.concealedSamples ?? 0, s.totalSamplesReceived ?? 0] });
        } else if (s.type === 'inbound-rtp' && s.kind === 'video') {
          streams.set(`${i}:${s.id}`, { kind: 'video', v: [s.framesDecoded ?? 0, s.freezeCount ?? 0, s.totalFreezesDuration ?? 0, s.bytesReceived ?? 0] });
        }
      });
    }
    for (const { kind, v } of streams.values()) {
      if (kind === 'audio') {
        out.audioIn.packetsReceived += v[0]!;
        out.audioIn.packetsLost += v[1]!;
        out.audioIn.concealedSamples += v[2]!;
        out.audioIn.totalSamplesReceived += v[3]!;
      } else {
        out.videoIn.framesDecoded += v[0]!;
        out.videoIn.freezeCount += v[1]!;
        out.videoIn.totalFreezesDurationS += v[2]!;
        out.videoIn.bytesReceived += v[3]!;
      }
    }
    return out;
  });
}
