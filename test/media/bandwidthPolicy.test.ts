import { expect } from 'chai';
import { BandwidthPolicy, LEVELS, levelNeedBps, videoStates, type PolicyVideo } from '../../src/media/bandwidthPolicy.js';
import { defaultVideoRank } from '../../src/media/bandwidthGovernor.js';

const stage: PolicyVideo = { id: 'stage', rank: 'stage', layered: true, score: 10 };
const thumb: PolicyVideo = { id: 'thumb', rank: 'thumbnail', layered: true, score: 10 };
const videos = [stage, thumb];

/** Feeds one sample per second from `fromS` to `toS` (exclusive) and returns the levels after each. */
function run(policy: BandwidthPolicy, fromS: number, toS: number, bps: (s: number) => number, vids = videos): string[] {
  const levels: string[] = [];
  for (let s = fromS; s < toS; s++) {
    policy.update({ nowMs: s * 1000, availableBps: bps(s), audioCount: 1, videos: vids });
    levels.push(LEVELS[policy.level]);
  }
  return levels;
}

describe('bandwidth policy (pure)', () => {
  it('orders the ladder: thumbnails lose layers, then the stage, then thumbnails pause, then the stage', () => {
    const at = (level: 0 | 1 | 2 | 3 | 4) => Object.fromEntries(videoStates(level, videos));
    expect(at(0)).to.deep.equal({ stage: 'full', thumb: 'full' });
    expect(at(1)).to.deep.equal({ stage: 'full', thumb: 'low' });
    expect(at(2)).to.deep.equal({ stage: 'low', thumb: 'low' });
    expect(at(3)).to.deep.equal({ stage: 'low', thumb: 'suspended' });
    expect(at(4)).to.deep.equal({ stage: 'suspended', thumb: 'suspended' });
    const needs = ([0, 1, 2, 3, 4] as const).map((l) => levelNeedBps(l, { audioCount: 1, videos }, new BandwidthPolicy().options));
    // mediasoup fits layers within the estimate by itself: levels 0-2 need the lowest layers only.
    expect(needs).to.deep.equal([170_000, 170_000, 170_000, 110_000, 50_000]);
  });

  it('starts at full and stays there on a good link; from a cap it climbs one level at a time, no faster than upAfterMs', () => {
    expect(run(new BandwidthPolicy(), 0, 12, () => 3_000_000).every((l) => l === 'full')).to.equal(true);
    const capped = new BandwidthPolicy({}, 2);
    const levels = run(capped, 0, 12, () => 3_000_000);
    expect(levels.indexOf('thumbs-low')).to.be.at.least(3);
    expect(levels.indexOf('full')).to.be.at.least(levels.indexOf('thumbs-low') + 3);
    expect(levels.at(-1)).to.equal('full');
  });

  it('falls straight to what fits: stage-only at 150 kb/s, audio-only at 80 kb/s', () => {
    const island = new BandwidthPolicy({}, 0);
    expect(run(island, 0, 4, () => 150_000).at(-1)).to.equal('stage-only');
    const edge = new BandwidthPolicy({}, 0);
    const levels = run(edge, 0, 4, () => 80_000);
    expect(levels.slice(0, 2)).to.deep.equal(['full', 'audio-only'], 'two samples, then one step to the level that fits');
  });

  it('steps down when a video score collapses even if the estimate looks fine', () => {
    const policy = new BandwidthPolicy({}, 0);
    const lossy = [{ ...stage, score: 2 }, thumb];
    policy.update({ nowMs: 0, availableBps: 5_000_000, audioCount: 1, videos: lossy });
    const step = policy.update({ nowMs: 1000, availableBps: 5_000_000, audioCount: 1, videos: lossy });
    expect(step).to.deep.equal({ from: 0, to: 1, reason: 'score' });
  });

  it('does not flap on an estimate that swings around a level: the hold-down grows', () => {
    const policy = new BandwidthPolicy({}, 0);
    // Alternates every 2 s between room for full video and room for the stage only.
    const levels = run(policy, 0, 120, (s) => (Math.floor(s / 2) % 2 === 0 ? 2_000_000 : 150_000));
    const changes = levels.filter((l, i) => i > 0 && l !== levels[i - 1]).length;
    expect(changes).to.be.at.most(14, `levels: ${levels.join(' ')}`);
    expect(policy.holdDownMs).to.be.above(8_000);
  });

  it('from audio-only, probes up after the hold-down and backs off for longer when the probe fails', () => {
    const policy = new BandwidthPolicy({}, 0);
    const levels = run(policy, 0, 60, () => 60_000);
    const probes = levels.filter((l, i) => i > 0 && l === 'stage-only' && levels[i - 1] === 'audio-only').length;
    expect(probes).to.be.within(1, 4);
    expect(levels.filter((l) => l === 'audio-only').length).to.be.above(45, 'mostly suspended');
    // The link comes back: video resumes.
    expect(run(policy, 60, 160, () => 3_000_000).at(-1)).to.equal('full');
  });

  it('ranks shared screens, device video and site cameras as stage', () => {
    expect(defaultVideoRank({ source: 'ultrasound', role: 'site' })).to.equal('stage');
    expect(defaultVideoRank({ source: 'screen', role: 'specialist' })).to.equal('stage');
    expect(defaultVideoRank({ source: 'camera', role: 'site' })).to.equal('stage');
    expect(defaultVideoRank({ source: 'camera', role: 'specialist' })).to.equal('thumbnail');
  });
});
