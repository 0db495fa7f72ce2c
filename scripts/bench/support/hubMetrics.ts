// A bench reads the hub's own /metrics, as an engineer's Prometheus would
// (an engineer token), so what a bench reports about the hub is what an
// operator can watch on a live one: RSS, heap, worker RSS, event-loop delay,
// signaling results, device flow.

import { Authenticator } from '../../../src/auth/index.js';
import type { OpsReport } from '../../../src/contract/ops.js';
import { parseProm, sumOf, type Sample } from '../../../test/telemetry/promText.js';
import { BENCH_SECRET } from './hubProcess.js';

export { sumOf, type Sample };

/** A scrape must not hang a bench whose hub is busy; past this it is a failed sample. */
const SCRAPE_TIMEOUT_MS = 10_000;

export class HubMetrics {
  readonly #token: string;

  /** `token`: an engineer's; by default one signed with the bench hub's secret (support/hubProcess.ts). */
  constructor(
    readonly hubUrl: string,
    token = Authenticator.forSecret(BENCH_SECRET).sign({ kind: 'person', sub: 'bench-engineer', name: 'bench engineer', role: 'engineer', conf: '*', ttlSeconds: 12 * 3600 }),
  ) {
    this.#token = token;
  }

  async scrape(): Promise<Sample[]> {
    const res = await fetch(`${this.hubUrl}/metrics`, { headers: { authorization: `Bearer ${this.#token}` }, signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
    if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
    return parseProm(await res.text());
  }

  /** GET /api/ops: the engineer page's picture (devices with their status, conferences, workers). */
  async ops(): Promise<OpsReport> {
    const res = await fetch(`${this.hubUrl}/api/ops`, { headers: { authorization: `Bearer ${this.#token}` }, signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
    if (res.status !== 200) throw new Error(`/api/ops answered ${res.status}`);
    return (await res.json()) as OpsReport;
  }
}

/** Signaling requests the hub answered with an error code (every code but ok), all request names. */
export function signalingErrors(samples: Sample[]): number {
  return samples.filter((s) => s.name === 'hoichan_signaling_requests_total' && s.labels.code !== 'ok').reduce((n, s) => n + s.value, 0);
}

/** The same, by "request code", for a report that says which ones failed. */
export function signalingErrorsByCode(samples: Sample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) if (s.name === 'hoichan_signaling_requests_total' && s.labels.code !== 'ok' && s.value > 0) out[`${s.labels.request} ${s.labels.code}`] = s.value;
  return out;
}

/**
 * prom-client's event-loop delay of the window since the previous scrape
 * (its monitorEventLoopDelay histogram is reset at every collect), in ms.
 * One scraper only: a second one (a Prometheus) would split the windows.
 */
export function eventLoopWindow(samples: Sample[]): { p50: number; p90: number; p99: number; max: number; mean: number } {
  const ms = (name: string) => sumOf(samples, `nodejs_eventloop_lag_${name}_seconds`) * 1000;
  return { p50: ms('p50'), p90: ms('p90'), p99: ms('p99'), max: ms('max'), mean: ms('mean') };
}

/**
 * A quantile of a Prometheus histogram over the interval between two scrapes
 * (bucket counts subtracted), as the upper bound of the bucket it falls in,
 * like PromQL's histogram_quantile without its interpolation. NaN with no
 * observations; Infinity past the largest bucket.
 */
export function histogramQuantile(before: Sample[], after: Sample[], name: string, match: Record<string, string>, q: number): number {
  const buckets = new Map<number, number>();
  const add = (samples: Sample[], sign: number) => {
    for (const s of samples) {
      if (s.name !== `${name}_bucket` || !Object.entries(match).every(([k, v]) => s.labels[k] === v)) continue;
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      buckets.set(le, (buckets.get(le) ?? 0) + sign * s.value);
    }
  };
  add(after, 1);
  add(before, -1);
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0) return NaN;
  return sorted.find(([, count]) => count >= q * total)![0];
}
