import { loadavg } from 'node:os';
import type { Page } from 'playwright-core';
import type { Hub } from '../../src/hub/Hub.js';

/**
 * What each step of a site's media recovery after an outage looks like, once
 * a second, so that a recovery that misses its bound says which step was slow
 * (docs/LINKS.md, "Recovery after a drop"). The path of the site's camera to
 * the specialist: the site page's send transport (ICE state, the page's
 * state, what its encoder sends, the keyframes and PLIs), the hub's producer
 * (per-layer scores: a layer at 0 is not forwarded), the specialist's
 * consumer of it (paused, the layers mediasoup picked, its score, the
 * specialist's bandwidth level and estimate), and the frames the specialist
 * decodes. A site that rejoined (a new peer id) shows as `site peer gone`.
 */
export interface RecoveryTraceOptions {
  hub: Hub;
  conferenceId: string;
  sitePage: Page;
  specialist: Page;
  sitePeerId: string;
  specialistPeerId: string;
  intervalMs?: number;
}

export class RecoveryTrace {
  readonly #options: RecoveryTraceOptions;
  readonly #rows: { at: number; text: string }[] = [];
  #zero = performance.now();
  #running = true;
  /** The peer ids the site page had: more than one means it joined again. */
  readonly #pagePeerIds = new Set<string>();
  readonly #loop: Promise<void>;

  constructor(options: RecoveryTraceOptions) {
    this.#options = options;
    this.#loop = this.#run();
  }

  /** Times in the trace count from here (the link coming back); samples before it are negative. */
  markZero(): void {
    this.#zero = performance.now();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  /** The rows whose state changed (the time aside), with the load average: for a failure message. */
  summary(): string {
    const lines: string[] = [];
    let previous = '';
    for (const { at, text } of this.#rows) {
      if (text === previous) continue;
      previous = text;
      lines.push(`  t=${((at - this.#zero) / 1000).toFixed(1)}s ${text}`);
    }
    const load = loadavg().map((l) => l.toFixed(1)).join(' ');
    const rejoined = this.#pagePeerIds.size > 1
      ? `\n  the site page joined again as a new peer (${[...this.#pagePeerIds].map((id) => id.slice(0, 8)).join(' -> ')}): its socket.io session was not recovered (docs/LINKS.md, "Recovery after a drop")`
      : '';
    return `recovery trace (t from the link back up; load average ${load}):\n${lines.join('\n')}${rejoined}`;
  }

  async #run(): Promise<void> {
    const interval = this.#options.intervalMs ?? 1000;
    while (this.#running) {
      const at = performance.now();
      const text = await this.#sample().catch((err: Error) => `trace failed: ${err.message}`);
      this.#rows.push({ at, text });
      if (this.#rows.length > 120) this.#rows.shift();
      await new Promise((resolve) => setTimeout(resolve, interval));
    }
  }

  async #sample(): Promise<string> {
    const { hub, conferenceId, sitePage, specialist, sitePeerId, specialistPeerId } = this.#options;
    const parts: string[] = [];
    const conference = hub.conferences.get(conferenceId);
    const site = conference?.getPeer(sitePeerId);
    const viewer = conference?.getPeer(specialistPeerId);
    if (!site) parts.push('hub: site peer gone');
    else {
      const transports = [...site.transports.values()].map((t) => `${t.appData.direction} ${t.iceState}/${t.dtlsState}`);
      parts.push(`hub: site transports [${transports.join(', ')}]`);
      const producer = [...site.producers.values()].find((p) => p.kind === 'video');
      if (!producer) parts.push('no site video producer');
      else {
        parts.push(`producer layer scores [${producer.score.map((s) => s.score).join(',')}]`);
        const consumer = viewer && [...viewer.consumers.values()].find((c) => c.producerId === producer.id);
        if (!consumer) parts.push('no specialist consumer');
        else {
          const layers = consumer.currentLayers ? `${consumer.currentLayers.spatialLayer}/${consumer.currentLayers.temporalLayer ?? 0}` : 'none';
          const forwarding = (consumer.appData as { forwarding?: boolean }).forwarding;
          parts.push(
            `consumer ${consumer.id.slice(0, 8)} ${consumer.paused ? 'paused' : 'resumed'}${consumer.producerPaused ? ' (producer paused)' : ''}` +
              `${forwarding ? '' : ' not forwarded'} layers ${layers} score ${consumer.score.score}`,
          );
        }
      }
      if (viewer) {
        const recv = [...viewer.transports.values()].find((t) => t.appData.direction === 'recv');
        const [stats] = recv ? await recv.getStats().catch(() => []) : [];
        parts.push(`specialist level ${conference!.bandwidthLevel(specialistPeerId) ?? '-'} estimate ${Math.round((stats?.availableOutgoingBitrate ?? 0) / 1000)} kb/s`);
      }
    }
    const page = await sitePage.evaluate(siteSendState);
    if (page.peerId) this.#pagePeerIds.add(page.peerId);
    parts.push(`site page ${page.text}`);
    parts.push(`specialist page ${await specialist.evaluate(videoReceived, sitePeerId)}`);
    return parts.join('; ');
  }
}

// Both run in the page (no DOM lib in the hub's tsconfig: the little they use is typed loosely).

/** The site page's state, its peer connections' states, and per simulcast layer what its encoder sends. */
async function siteSendState(): Promise<{ peerId: string; text: string }> {
  const g = globalThis as any;
  const pcs = (g.__linkPcs ?? []) as { connectionState: string; getStats(): Promise<Map<string, any>> }[];
  const out: string[] = [];
  for (const pc of pcs) {
    if (pc.connectionState === 'closed') continue;
    const layers: string[] = [];
    (await pc.getStats()).forEach((s: any) => {
      if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
      layers.push(`${s.rid ?? 'v'}: ${s.framesEncoded ?? 0} frames ${s.keyFramesEncoded ?? 0} key ${s.pliCount ?? 0} PLI${s.qualityLimitationReason && s.qualityLimitationReason !== 'none' ? ` limited by ${s.qualityLimitationReason}` : ''}`);
    });
    out.push(`${pc.connectionState}${layers.length ? ` (${layers.join(', ')})` : ''}`);
  }
  const state = g.document?.querySelector('#state')?.getAttribute('data-state');
  const peerId = String(g.hoichan?.peerId ?? '');
  return { peerId, text: `${state} peer ${peerId.slice(0, 8)} pcs [${out.join(' | ')}]` };
}

/**
 * What the specialist receives of the site's video (consumer, frames decoded, packets), video of any other
 * peer (the site back as a new peer after a rejoin), and any videoSuspended/videoResumed it heard.
 */
async function videoReceived(sitePeerId: string): Promise<string> {
  const g = globalThis as any;
  const rows = ((await g.hoichan.stats()) as { consumerId: string; peerId: string; kind: string; framesDecoded: number; packetsReceived: number }[]).filter((r) => r.kind === 'video');
  const line = (r: (typeof rows)[number]) => `${r.consumerId.slice(0, 8)} ${r.framesDecoded} frames ${r.packetsReceived} packets`;
  const events = ((g.hoichan.events ?? []) as { name: string }[]).filter((e) => e.name === 'videoSuspended' || e.name === 'videoResumed').map((e) => e.name);
  const site = rows.filter((r) => r.peerId === sitePeerId).map(line).join(', ') || 'no site video consumer';
  const others = rows.filter((r) => r.peerId !== sitePeerId).map((r) => `peer ${r.peerId.slice(0, 8)}: ${line(r)}`);
  return `${site}${others.length ? `; other video ${others.join(', ')}` : ''}${events.length ? ` [${events.join(',')}]` : ''}`;
}
