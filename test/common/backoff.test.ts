// The one reconnect backoff (src/common/backoff.ts) in each mode its callers use.

import { expect } from 'chai';
import { Backoff } from '../../src/common/backoff.js';

describe('Backoff', () => {
  const run = (b: Backoff, n: number) => Array.from({ length: n }, () => b.next());

  it('without jitter doubles from minMs to maxMs and starts over after reset (serial port, delivery queue, OPC UA, ingest)', () => {
    const b = new Backoff({ minMs: 100, maxMs: 5000 });
    expect(run(b, 8)).to.deep.equal([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    expect(b.attempts).to.equal(8);
    b.reset();
    expect(b.attempts).to.equal(0);
    expect(b.next()).to.equal(100);
  });

  it('with a jitter fraction stays within cap * (1 +- f) (HL7 PDS client)', () => {
    const high = new Backoff({ minMs: 250, maxMs: 10_000, jitter: 0.2, random: () => 0.999_999 });
    const low = new Backoff({ minMs: 250, maxMs: 10_000, jitter: 0.2, random: () => 0 });
    expect(run(high, 3)).to.deep.equal([300, 600, 1200]);
    expect(run(low, 3)).to.deep.equal([200, 400, 800]);
  });

  it('with full jitter never goes below minMs / 2 (uplink)', () => {
    const b = new Backoff({ minMs: 500, maxMs: 30_000, jitter: 'full', random: () => 0.5 });
    expect(run(b, 3)).to.deep.equal([250, 500, 1000]);
  });

  it('keeps the cap after very many failures (no overflow)', () => {
    const b = new Backoff({ minMs: 1, maxMs: 60_000 });
    const delays = run(b, 2000);
    expect(delays.at(-1)).to.equal(60_000);
    expect(delays.every(Number.isFinite)).to.equal(true);
  });

  it('refuses delays and jitter it cannot mean', () => {
    expect(() => new Backoff({ minMs: -1, maxMs: 10 })).to.throw(/>= 0/);
    expect(() => new Backoff({ minMs: Number.NaN, maxMs: 10 })).to.throw(/>= 0/);
    expect(() => new Backoff({ minMs: 10, maxMs: 100, jitter: 1 })).to.throw(/jitter/);
  });
});
