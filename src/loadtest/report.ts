// The end-of-run summary: one row per track type (audio, video) over every
// subscriber, plus the publishers' side and the join figures, as a table for
// people and as JSON for scripts. Pure: run.ts hands it the clients' totals.

import type { StreamTotals } from './stats.js';

export interface TrackTypeSummary {
  kind: 'audio' | 'video';
  /** received streams (subscribers x producers of this kind) */
  tracks: number;
  /** streams that received nothing */
  silentTracks: number;
  packets: number;
  bitrateKbpsPerTrack: number;
  bitrateMbpsTotal: number;
  /** packets never received (after repairs) */
  lost: number;
  lossPercent: number;
  gapsAtArrivalPercent: number;
  recovered: number;
  jitterMsMean: number;
  jitterMsMax: number;
  nacksSent: number;
  plisSent: number;
}

export interface LoadtestReport {
  hub: string;
  conferenceId: string;
  publishers: number;
  subscribers: number;
  video: string;
  durationSeconds: number;
  /** seconds media was measured (after every client joined) */
  measuredSeconds: number;
  tracks: TrackTypeSummary[];
  join: { p50Ms: number; p99Ms: number; maxMs: number; firstVideoP50Ms: number; firstVideoP99Ms: number; firstAudioP50Ms: number; firstAudioP99Ms: number };
  publisherSide: { packetsSent: number; bitrateMbps: number; nacksReceived: number; retransmitted: number; keyframeRequests: number; sendErrors: number };
  failures: { total: number; byStage: Record<string, number>; examples: string[] };
  generatorCpuPercent: number;
  /** Only with the test hook that drops packets: how many it dropped, retransmissions included. */
  droppedByHook?: number;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * p) - 1))]!;
}

export function summarizeTracks(kind: 'audio' | 'video', totals: StreamTotals[], measuredSeconds: number): TrackTypeSummary {
  const mine = totals.filter((t) => t.kind === kind);
  const sum = (f: (t: StreamTotals) => number) => mine.reduce((s, t) => s + f(t), 0);
  const expected = sum((t) => t.expected);
  const bytes = sum((t) => t.bytes);
  const jitters = mine.filter((t) => t.packets > 1).map((t) => t.jitterMs);
  return {
    kind,
    tracks: mine.length,
    silentTracks: mine.filter((t) => t.packets === 0).length,
    packets: sum((t) => t.packets),
    bitrateKbpsPerTrack: mine.length && measuredSeconds > 0 ? (bytes * 8) / 1000 / measuredSeconds / mine.length : 0,
    bitrateMbpsTotal: measuredSeconds > 0 ? (bytes * 8) / 1e6 / measuredSeconds : 0,
    lost: sum((t) => t.lost),
    lossPercent: expected ? (100 * sum((t) => t.lost)) / expected : 0,
    gapsAtArrivalPercent: expected ? (100 * sum((t) => t.gapsAtArrival)) / expected : 0,
    recovered: sum((t) => t.recovered),
    jitterMsMean: jitters.length ? jitters.reduce((a, b) => a + b, 0) / jitters.length : 0,
    jitterMsMax: jitters.length ? Math.max(...jitters) : 0,
    nacksSent: sum((t) => t.nacksSent),
    plisSent: sum((t) => t.plisSent),
  };
}

function fmt(v: number, digits = 1): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '-';
}

export function formatTable(rows: Record<string, string>[]): string {
  const first = rows[0];
  if (!first) return '';
  const columns = Object.keys(first);
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (values: string[]) => values.map((v, i) => v.padStart(widths[i]!)).join('  ');
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(columns.map((c) => r[c] ?? '')))].join('\n');
}

export function formatReport(r: LoadtestReport): string {
  const trackRows = r.tracks.map((t) => ({
    track: t.kind,
    tracks: String(t.tracks),
    silent: String(t.silentTracks),
    packets: String(t.packets),
    'kb/s each': fmt(t.bitrateKbpsPerTrack),
    'Mb/s total': fmt(t.bitrateMbpsTotal, 2),
    'loss %': fmt(t.lossPercent, 3),
    'gaps %': fmt(t.gapsAtArrivalPercent, 3),
    recovered: String(t.recovered),
    'jitter ms': `${fmt(t.jitterMsMean)} (max ${fmt(t.jitterMsMax)})`,
    'NACKs sent': String(t.nacksSent),
    'PLIs sent': String(t.plisSent),
  }));
  const p = r.publisherSide;
  const lines = [
    `hoichan loadtest: ${r.publishers} publisher(s), ${r.subscribers} subscriber(s), ${r.video}, conference ${r.conferenceId}, measured ${fmt(r.measuredSeconds)} s`,
    '',
    formatTable(trackRows),
    '',
    formatTable([
      {
        'join p50 ms': fmt(r.join.p50Ms, 0),
        'join p99 ms': fmt(r.join.p99Ms, 0),
        'join max ms': fmt(r.join.maxMs, 0),
        'first video p50 ms': fmt(r.join.firstVideoP50Ms, 0),
        'first video p99 ms': fmt(r.join.firstVideoP99Ms, 0),
        'first audio p50 ms': fmt(r.join.firstAudioP50Ms, 0),
        failures: String(r.failures.total),
      },
    ]),
    '',
    `publishers: ${p.packetsSent} packets sent (${fmt(p.bitrateMbps, 2)} Mb/s), ${p.nacksReceived} NACKs received, ${p.retransmitted} retransmitted, ${p.keyframeRequests} keyframe requests, ${p.sendErrors} send errors`,
    `load generator CPU: ${fmt(r.generatorCpuPercent, 0)} % of one core${r.generatorCpuPercent > 80 ? '  (near a core: the generator may be the limit, not the hub)' : ''}`,
  ];
  if (r.failures.total > 0) {
    lines.push(`failures by stage: ${Object.entries(r.failures.byStage).map(([s, n]) => `${s} ${n}`).join(', ')}`);
    for (const e of r.failures.examples) lines.push(`  ${e}`);
  }
  return lines.join('\n');
}
