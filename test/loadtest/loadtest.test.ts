import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Hub } from '../../src/hub/Hub.js';
import { runLoadtest, type LoadtestOptions } from '../../src/loadtest/run.js';
import { loadAudioClip, loadVideoClip, SIMULCAST_LAYERS } from '../../src/loadtest/media.js';
import { buildNack, parseFeedback } from '../../src/loadtest/rtp.js';
import { ReceiveStream } from '../../src/loadtest/stats.js';
import type { LoadtestReport } from '../../src/loadtest/report.js';
import { PROJECT_ROOT, startTestHub, TEST_SECRET, waitUntil } from '../support/hub.js';

/** The real command, as a child process (async: the hub under test lives in this process's event loop). */
function hoichan(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'hoichan.js'), ...args], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        HOICHAN_LOG_LEVEL: 'silent',
        // The clips the before hook encoded.
        ...(process.env.HOICHAN_LOADTEST_CACHE ? { HOICHAN_LOADTEST_CACHE: process.env.HOICHAN_LOADTEST_CACHE } : {}),
        ...env,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

describe('hoichan loadtest (real hub, real WebRTC clients over libdatachannel)', function () {
  this.timeout(120000);
  let hub: Hub;

  before(function () {
    // The clips are encoded once per machine (~/.cache/hoichan/loadtest); on a fresh, busy machine ffmpeg
    // needs about a minute for the 720p one, which is not the run's time.
    this.timeout(600000);
    loadAudioClip();
    loadVideoClip('vp8');
    for (const layer of SIMULCAST_LAYERS) loadVideoClip('vp8', layer);
  });
  before(async () => {
    // Subscribers consume a producer twice a second at most per socket; the default rate limit is ample.
    hub = await startTestHub();
  });
  after(async () => {
    await hub?.close();
  });

  const options = (conferenceId: string, subscribers: number, durationSeconds: number): LoadtestOptions => ({
    hubUrl: hub.url,
    conferenceId,
    tokenSecret: TEST_SECRET,
    publishers: 1,
    subscribers,
    durationSeconds,
    video: 'vp8',
    audioOnly: false,
    joinRate: 20,
  });

  it('1 publisher, 10 subscribers for 10 s: every subscriber receives video and audio, little loss, no failures', async () => {
    const report = await runLoadtest(options('loadtest-smoke', 10, 10));
    expect(report.failures, JSON.stringify(report.failures)).to.deep.include({ total: 0 });
    const video = report.tracks.find((t) => t.kind === 'video')!;
    const audio = report.tracks.find((t) => t.kind === 'audio')!;
    for (const t of [video, audio]) {
      expect(t.tracks, t.kind).to.equal(10);
      expect(t.silentTracks, t.kind).to.equal(0);
      // Generous: the machine is shared, and loopback under load can drop a little.
      expect(t.lossPercent, t.kind).to.be.below(5);
    }
    // 10 s of 30 fps video at about 1.5 Mb/s is thousands of packets per subscriber; audio 50 packets/s.
    expect(video.packets / 10).to.be.above(1000);
    expect(audio.packets / 10).to.be.above(300);
    expect(video.bitrateKbpsPerTrack).to.be.within(500, 3000);
    expect(report.publisherSide.sendErrors).to.equal(0);
    // Every client closed its socket: the hub closes the conference when the last peer leaves.
    await waitUntil(() => hub.conferences.get('loadtest-smoke') === undefined, 10000, 'the conference to close');
  });

  it('notices loss: subscribers dropping every 10th packet report about 10 % loss and send NACKs for it', async () => {
    const report = await runLoadtest(options('loadtest-loss', 3, 5), { dropEvery: 10 });
    expect(report.failures.total).to.equal(0);
    for (const t of report.tracks) {
      expect(t.lossPercent, t.kind).to.be.within(8, 12);
      expect(t.nacksSent, t.kind).to.be.above(0);
    }
    // The hub answered the NACKs from its own buffer: the retransmissions arrived and were dropped again (same
    // sequence numbers), so more packets were dropped than were lost.
    const lost = report.tracks.reduce((s, t) => s + t.lost, 0);
    expect(report.droppedByHook).to.be.above(lost * 1.5);
    const video = report.tracks.find((t) => t.kind === 'video')!;
    expect(video.plisSent, 'a packet missing after every NACK makes a video receiver ask for a keyframe').to.be.above(0);
  });

  it('--last-n: each subscriber receives the video of K publishers only; the hub pauses the rest, audio is untouched', async () => {
    // Sampled on the hub while media flows: forwarded (unpaused) video consumers per subscriber.
    const forwarded: number[] = [];
    const report = await runLoadtest(
      { ...options('loadtest-lastn', 2, 4), publishers: 3, lastN: 1 },
      {
        onProgress: (line) => {
          if (!/media/.test(line)) return;
          for (const peer of hub.conferences.get('loadtest-lastn')?.peers ?? []) {
            const video = [...peer.consumers.values()].filter((c) => c.kind === 'video');
            if (video.length === 3) forwarded.push(video.filter((c) => !c.paused).length);
          }
        },
      },
    );
    expect(report.failures.total, JSON.stringify(report.failures)).to.equal(0);
    expect(report.video).to.match(/last-N 1/);
    expect(forwarded.length, 'hub samples').to.be.above(0);
    expect(new Set(forwarded)).to.deep.equal(new Set([1]));
    const video = report.tracks.find((t) => t.kind === 'video')!;
    const audio = report.tracks.find((t) => t.kind === 'audio')!;
    expect(video.tracks).to.equal(6);
    // At least one camera per subscriber never arrived (a second may have, if the speaker observer
    // named another publisher once: these publishers send no audio level).
    expect(video.silentTracks).to.be.at.least(2);
    expect(audio.silentTracks).to.equal(0);
  });

  it('sees NACK repairs: with retransmissions let through, video gaps are ~10 % at arrival but recovered; audio (no NACK in mediasoup) stays lost', async () => {
    const report = await runLoadtest(options('loadtest-repair', 2, 5), { dropEvery: 10, keepRetransmissions: true });
    expect(report.failures.total).to.equal(0);
    const video = report.tracks.find((t) => t.kind === 'video')!;
    const audio = report.tracks.find((t) => t.kind === 'audio')!;
    expect(video.gapsAtArrivalPercent).to.be.within(8, 12);
    expect(video.recovered).to.be.above(0);
    // Packets still missing when the run stops (the last ~100 ms) are counted lost.
    expect(video.lossPercent).to.be.below(2);
    expect(audio.lossPercent).to.be.within(8, 12);
  });

  it('the command: simulcast VP8 publisher, JSON report, progress on stderr, every client gets the top layer', async () => {
    const run = await hoichan(
      ['loadtest', '--hub', hub.url, '--conference', 'loadtest-cli', '--publishers', '1', '--subscribers', '2', '--duration', '4s', '--simulcast', '--join-rate', '20/s', '--json'],
      { HOICHAN_JWT_SECRET: TEST_SECRET },
    );
    expect(run.status, run.stderr).to.equal(0);
    expect(run.stderr).to.match(/subscribers joined 2\/2/);
    const report = JSON.parse(run.stdout) as LoadtestReport;
    expect(report.failures.total).to.equal(0);
    expect(report.video).to.match(/simulcast/);
    const video = report.tracks.find((t) => t.kind === 'video')!;
    expect(video).to.include({ tracks: 2, silentTracks: 0 });
    // Without a bandwidth estimate from the subscriber, the hub forwards the highest layer (720p, ~1.5 Mb/s), not 180p or 360p.
    expect(video.bitrateKbpsPerTrack).to.be.above(900);
  });

  it('the command: --help documents every option; bad options exit 2 with the option named', async () => {
    const help = await hoichan(['loadtest', '--help']);
    expect(help.status).to.equal(0);
    for (const option of ['--hub', '--token-secret', '--token-issuer', '--tokens', '--conference', '--publishers', '--subscribers', '--duration', '--video', '--simulcast', '--audio-only', '--join-rate', '--last-n', '--json']) {
      expect(help.stdout, option).to.include(option);
    }
    const base = ['loadtest', '--hub', hub.url, '--conference', 'c', '--token-secret', 'x'];
    for (const [args, message] of [
      [['--subscribers', '1001'], /--subscribers must be a whole number 0..1000/],
      [['--duration', '2h'], /--duration/],
      [['--duration', '7200s'], /--duration must be 1s..3600s/],
      [['--video', 'av1'], /--video must be vp8 or h264/],
      [['--join-rate', 'fast'], /--join-rate/],
      [['--last-n', '26'], /--last-n must be a whole number 0..25/],
      [['--tokens', '/nonexistent'], /exactly one of --token-secret and --tokens/],
    ] as const) {
      const r = await hoichan([...base, ...args]);
      expect(r.status, args.join(' ')).to.equal(2);
      expect(r.stderr, args.join(' ')).to.match(message);
    }
  });

  it('counts gaps, repairs and duplicates across the 16-bit sequence wrap, and packs NACKs as the hub reads them', () => {
    const s = new ReceiveStream('video', 90000);
    let now = 0;
    for (const seq of [65533, 65534, 65535, 2, 3]) s.receive(seq, seq * 3000, 100, (now += 33));
    expect(s.totals()).to.include({ expected: 7, packets: 5, lost: 2, gapsAtArrival: 2 });
    s.receive(0, 0, 100, (now += 5));
    s.receive(0, 0, 100, (now += 5));
    expect(s.totals()).to.include({ packets: 6, lost: 1, recovered: 1, duplicates: 1 });
    expect(s.due(now + 1000).nack).to.deep.equal([1]);
    const [fb] = parseFeedback(buildNack(1, 2, [65535, 0, 5, 40]));
    expect(fb).to.deep.equal({ type: 'nack', mediaSsrc: 2, seqs: [65535, 0, 5, 40] });
  });
});
