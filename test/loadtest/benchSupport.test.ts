import { expect } from 'chai';
import type { Hub } from '../../src/hub/Hub.js';
import { runLoadtest } from '../../src/loadtest/run.js';
import { loadAudioClip, loadVideoClip } from '../../src/loadtest/media.js';
import { eventLoopWindow, histogramQuantile, HubMetrics } from '../../scripts/bench/support/hubMetrics.js';
import { parseProgress } from '../../scripts/bench/support/loadtestProcess.js';
import { BENCH_SECRET, HubProcess } from '../../scripts/bench/support/hubProcess.js';
import { Authenticator } from '../../src/auth/index.js';
import { parseProm } from '../telemetry/promText.js';
import { startTestHub, TEST_SECRET } from '../support/hub.js';

// The join-storm and soak benches read the generator's progress lines and the
// hub's /metrics; a change of either format must fail here, not silently
// turn a bench's columns into zeros.
describe('bench support: loadtest progress and hub /metrics readers', function () {
  this.timeout(120000);
  let hub: Hub;

  before(function () {
    this.timeout(600000); // the clips are encoded once per machine (see loadtest.test.ts)
    loadAudioClip();
    loadVideoClip('vp8');
  });
  before(async () => {
    hub = await startTestHub();
  });
  after(async () => {
    await hub?.close();
  });

  it('parses every progress line of a real run, up to its media phase', async () => {
    const lines: string[] = [];
    await runLoadtest(
      { hubUrl: hub.url, conferenceId: 'bench-support-progress', tokenSecret: TEST_SECRET, publishers: 1, subscribers: 2, durationSeconds: 3, video: 'vp8', audioOnly: false, joinRate: 20 },
      { onProgress: (line) => lines.push(line) },
    );
    expect(lines).to.not.be.empty;
    const parsed = lines.map((line) => ({ line, progress: parseProgress(line) }));
    for (const { line, progress } of parsed) expect(progress, line).to.not.equal(undefined);
    const media = parsed.map((p) => p.progress!).filter((p) => p.phase === 'media');
    expect(media, lines.join('\n')).to.not.be.empty;
    expect(media.at(-1)).to.include({ joined: 2, subscribers: 2, failures: 0 });
    expect(media.at(-1)!.packets).to.be.greaterThan(0);
  });

  it('refuses a line that is not a progress line', () => {
    expect(parseProgress('hoichan loadtest: stopping early, closing every client')).to.equal(undefined);
  });

  it("reads the event-loop delay of the window since the previous scrape from a real hub's /metrics", async function () {
    // A hub in its own process, as the benches run it: a hub in this test process shares prom-client's
    // registry with whatever else the suite left running here, and any other collection resets the window.
    // Stopping that process (SIGSTOP) for 300 ms delays its event loop by as much, whatever the machine does.
    this.timeout(120000);
    const child = await HubProcess.start();
    try {
      const engineer = Authenticator.forSecret(BENCH_SECRET).sign({ kind: 'person', sub: 'bench-support-engineer', name: 'ops', role: 'engineer', conf: '*', ttlSeconds: 600 });
      const metrics = new HubMetrics(child.info.url, engineer);
      await metrics.scrape(); // closes the previous window
      process.kill(child.info.pid, 'SIGSTOP');
      await new Promise((resolve) => setTimeout(resolve, 300));
      process.kill(child.info.pid, 'SIGCONT');
      const window = eventLoopWindow(await metrics.scrape());
      expect(window.max).to.be.at.least(250);
      expect(window.p50).to.be.greaterThan(0);
    } finally {
      await child.close();
    }
  });

  it('takes a histogram quantile over the interval between two scrapes, as the bucket it falls in', () => {
    const scrape = (counts: number[]) =>
      parseProm(
        ['0.01', '0.1', '1', '+Inf']
          .map((le, i) => `hoichan_signaling_request_duration_seconds_bucket{le="${le}",request="join"} ${counts[i]}\nhoichan_signaling_request_duration_seconds_bucket{le="${le}",request="consume"} 1000`)
          .join('\n'),
      );
    // Before: 10 joins all under 10 ms. Then 100 more: 50 under 10 ms, 49 under 100 ms, 1 under 1 s.
    const before = scrape([10, 10, 10, 10]);
    const after = scrape([60, 109, 110, 110]);
    const q = (p: number) => histogramQuantile(before, after, 'hoichan_signaling_request_duration_seconds', { request: 'join' }, p);
    expect(q(0.5)).to.equal(0.01);
    expect(q(0.9)).to.equal(0.1);
    expect(q(0.995)).to.equal(1);
    expect(histogramQuantile(after, after, 'hoichan_signaling_request_duration_seconds', { request: 'join' }, 0.5)).to.be.NaN;
  });
});
