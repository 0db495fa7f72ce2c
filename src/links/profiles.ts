import type { DirectionSpec } from './linkModel.js';

/** A link off for `durationMs` every `everyMs`, the first time `firstAtMs` after the emulator starts. */
export interface OutageSchedule {
  firstAtMs: number;
  everyMs: number;
  durationMs: number;
}

/**
 * An emulated site link. `up` is the site's uplink (site → hub), `down` its
 * downlink (hub → site). The round-trip time is up.delayMs + down.delayMs
 * (plus queueing); loss applies per direction.
 */
export interface LinkProfile {
  name: string;
  description: string;
  up: DirectionSpec;
  down: DirectionSpec;
  outages?: OutageSchedule;
}

/** Queue depth in wire bytes that drains in `ms` at `rateBps` (a modem's buffer, sized in time). */
function queueFor(rateBps: number, ms: number): number {
  return Math.max(3000, Math.round((rateBps / 8) * (ms / 1000)));
}

function direction(rateBps: number, delayMs: number, loss: number, jitterMs = 0, queueMs = 400): DirectionSpec {
  return { rateBps, delayMs, jitterMs, loss, queueBytes: queueFor(rateBps, queueMs) };
}

/**
 * The named profiles of issue 15 (docs/LINKS.md). Delays are half the stated
 * RTT each way. Queues are sized in time (how long a full queue takes to
 * drain): 3G and satellite modems buffer generously, so a sender that
 * overshoots sees delay grow before it sees loss.
 */
export const LINK_PROFILES: Readonly<Record<string, LinkProfile>> = {
  'commune-3g': {
    name: 'commune-3g',
    description: 'a commune health station on 3G: uplink 384 kb/s, downlink 1 Mb/s, 150 ms RTT, 2 % loss each way',
    up: direction(384_000, 75, 0.02, 5, 500),
    down: direction(1_000_000, 75, 0.02, 5, 300),
  },
  'island-satellite': {
    name: 'island-satellite',
    description: 'an island on a VSAT link: 256 kb/s each way, 650 ms RTT, 3 % loss each way, ±20 ms jitter',
    up: direction(256_000, 325, 0.03, 20, 500),
    down: direction(256_000, 325, 0.03, 20, 500),
  },
  edge: {
    name: 'edge',
    description: 'a mountain district on EDGE: 120 kb/s each way, 300 ms RTT, 5 % loss each way',
    up: direction(120_000, 150, 0.05, 10, 600),
    down: direction(120_000, 150, 0.05, 10, 600),
  },
  flaky: {
    name: 'flaky',
    description: 'a good link (4 Mb/s, 40 ms RTT, no loss) that drops for 30 s every 3 minutes, first after 60 s',
    up: direction(4_000_000, 20, 0, 0, 200),
    down: direction(4_000_000, 20, 0, 0, 200),
    outages: { firstAtMs: 60_000, everyMs: 180_000, durationMs: 30_000 },
  },
};

export function linkProfile(name: string): LinkProfile {
  const profile = LINK_PROFILES[name];
  if (!profile) throw new Error(`unknown link profile '${name}'; one of: ${Object.keys(LINK_PROFILES).join(', ')}`);
  return profile;
}

/** The round-trip time the profile adds, without queueing (ms). */
export function profileRttMs(profile: LinkProfile): number {
  return profile.up.delayMs + profile.down.delayMs;
}
