import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { ReadingBody } from '../../src/devices/reading.js';
import type { Hub } from '../../src/hub/Hub.js';
import { Ecg } from '../../src/sim/physiology.js';
import { manifestSchema, sidecarSchema, type RecordingManifest, type TrackSidecar } from '../../src/recording/types.js';
import { rtpDiff } from '../../src/recording/sdp.js';
import { launchChromium, openPage, screenshot, pageStats as statsOf, pagePeerId as peerIdOf } from '../support/browser.js';
import { TestClient, startTestHub, token, waitUntil } from '../support/hub.js';
import { UplinkSite } from '../support/uplinkSite.js';

// Issue 16, recording: a real 3-peer Chromium conference with a device stream
// through the hub's uplink is recorded for ~8 s; every track file plays
// (ffprobe), the readings are in order, the tracks' clock mappings agree with
// the senders' own RTCP clocks, and the review page shows video and waveform
// at one instant after a seek. Also who may start and stop.

const CONF = 'rec-e2e';
const DEVICE = 'rec-monitor';
const RECORD_MS = 8000;
/**
 * ffprobe's duration (media time) vs the time the track was recorded (first
 * packet to stop, wall time). A starved browser's audio clock jumps and its
 * encoder skips: 1.8 s of drift was seen on this shared host at load 20+.
 */
const DURATION_TOLERANCE_S = 2.0;



/** CPU seconds (user + system) of this process's ffmpeg children, from /proc. */
function ffmpegCpuSeconds(): { seconds: number; processes: number } {
  const tick = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
  let seconds = 0;
  let processes = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (comm !== 'ffmpeg' || Number(fields[1]) !== process.pid) continue;
      seconds += (Number(fields[11]) + Number(fields[12])) / tick;
      processes++;
    } catch {
      // exited meanwhile
    }
  }
  return { seconds, processes };
}

function ffprobe(path: string): { codec: string; duration: number } {
  const out = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name:format=duration', '-of', 'json', path]).toString()) as {
    streams: { codec_name: string }[];
    format: { duration?: string };
  };
  return { codec: out.streams[0]!.codec_name, duration: Number(out.format.duration) };
}

/** A video file's frame interval: the median gap between its packets' times (its frame rate field is 1000/1 in WebM). */
function frameMsOf(path: string): number {
  const pts = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', path])
    .toString()
    .trim()
    .split('\n')
    .map(Number)
    .sort((a, b) => a - b);
  const gaps = pts.slice(1).map((x, i) => x - pts[i]!).sort((a, b) => a - b);
  return 1000 * (gaps[Math.floor(gaps.length / 2)] ?? 0);
}

/** The sender's capture time (ms since 1970) of the first packet, from its first sender report on the recorded SSRC. */
function captureMs(sidecar: TrackSidecar): number | undefined {
  const sr = sidecar.senderReports.find((r) => r.ssrc === sidecar.producerSsrc);
  const rtp = sidecar.firstPacket?.producerRtpTimestamp;
  if (!sr || rtp === null || rtp === undefined) return undefined;
  return sr.ntpMs + (1000 * rtpDiff(sr.rtpTimestamp, rtp)) / sidecar.codec.clockRate;
}

describe('recording: a 3-peer Chromium conference with a device stream', function () {
  this.timeout(150_000);
  let hub: Hub;
  let browser: Browser;
  let recDir: string;
  let site: UplinkSite;
  let feed: NodeJS.Timeout | undefined;
  let control: TestClient;
  const pages: { page: Page; consoleErrors: string[] }[] = [];
  let recordingId = '';
  let manifest: RecordingManifest;
  let startedAt = 0;

  before(async () => {
    recDir = mkdtempSync(join(tmpdir(), 'hoichan-rec-'));
    // One worker: with two, this shared 2-core host starves the browsers' encoders (media time drifts from wall time).
    hub = await startTestHub({ media: { numWorkers: 1 }, recording: { dir: recDir, minFreeDiskMB: 1 } });
    browser = await launchChromium();
  });
  after(async () => {
    clearInterval(feed);
    site?.disconnect();
    control?.close();
    await browser?.close();
    await hub?.close();
    if (!process.env.KEEP_RECORDING) rmSync(recDir, { recursive: true, force: true });
  });

  it('only a specialist of the conference may start or stop recording', async () => {
    const siteClient = await TestClient.connect(hub.url, token('site', CONF, 'site-a'));
    const other = await TestClient.connect(hub.url, token('specialist', 'another-conf', 'dr-other'));
    try {
      await siteClient.ok('join', { conferenceId: CONF });
      const bySite = await siteClient.request('startRecording', { conferenceId: CONF });
      expect(bySite.ok).to.equal(false);
      expect(!bySite.ok && bySite.error.code).to.equal('forbidden');
      await other.ok('join', { conferenceId: 'another-conf' });
      const byOther = await other.request('startRecording', { conferenceId: CONF });
      expect(!byOther.ok && byOther.error.code).to.equal('forbidden');
      const stopByOther = await other.request('stopRecording', { conferenceId: CONF });
      expect(!stopByOther.ok && stopByOther.error.code).to.equal('forbidden');
      const bad = await other.request('startRecording', { conferenceId: '../x' });
      expect(!bad.ok && bad.error.code).to.equal('bad_request');
      expect(hub.recording!.stateOf(CONF).active).to.equal(false);
    } finally {
      siteClient.close();
      other.close();
    }
  });

  it('records every track and the readings; all peers and a late joiner see the indicator', async () => {
    const names = ['Dr Lan', 'Dr Minh', 'Tram Y te'];
    const roles = ['specialist', 'specialist', 'site'] as const;
    for (let i = 0; i < 3; i++) {
      pages.push(await openPage(browser, `${hub.url}/${roles[i] === 'site' ? 'site' : 'conference'}/${CONF}#token=${token(roles[i]!, CONF, names[i])}`));
    }
    const peerIds = await Promise.all(pages.map(({ page }) => waitUntil(async () => (await peerIdOf(page)) !== '', 30_000, 'join').then(() => peerIdOf(page))));
    for (const [i, { page }] of pages.entries()) {
      const others = peerIds.filter((_, j) => j !== i);
      await waitUntil(async () => {
        const stats = await statsOf(page);
        return others.every((p) => stats.some((s) => s.peerId === p && s.kind === 'video' && s.framesDecoded > 0));
      }, 40_000, `peer ${i} decoding both others`);
    }

    // The monitor, through the hub's real uplink: ECG 250 Hz and pleth 100 Hz in 200 ms chunks, numerics each second.
    site = new UplinkSite(hub.url, 'site-rec', CONF, [
      {
        deviceId: DEVICE,
        type: 'vitals',
        model: 'Test monitor',
        channels: [
          { code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', kind: 'waveform' },
          { code: 'MDC_PULS_OXIM_PLETH', unit: '', kind: 'waveform' },
          { code: 'MDC_ECG_HEART_RATE', unit: '/min', kind: 'numeric' },
        ],
      },
    ]);
    await site.connect();
    let ecgT = Date.now();
    let plethT = ecgT;
    const ecg = new Ecg(ecgT / 1000, () => 72);
    let ticks = 0;
    let sending = Promise.resolve();
    feed = setInterval(() => {
      const now = Date.now();
      const bodies: ReadingBody[] = [];
      const ecgStart = ecgT;
      const ecgSamples: number[] = [];
      for (; ecgT < now; ecgT += 4) ecgSamples.push(Math.round(ecg.leadII(ecgT / 1000) * 1000) / 1000);
      bodies.push({ kind: 'waveform', code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', t: ecgStart, rt: now, sampleRate: 250, samples: ecgSamples });
      const plethStart = plethT;
      const pleth: number[] = [];
      for (; plethT < now; plethT += 10) pleth.push(Math.round(1000 * Math.exp(-(((((plethT / 833) % 1) - 0.3) / 0.1) ** 2))) / 1000);
      bodies.push({ kind: 'waveform', code: 'MDC_PULS_OXIM_PLETH', unit: '', t: plethStart, rt: now, sampleRate: 100, samples: pleth });
      if (ticks++ % 5 === 0) bodies.push({ kind: 'numeric', code: 'MDC_ECG_HEART_RATE', unit: '/min', t: now, rt: now, value: 72 });
      if (ticks === 20) bodies.push({ kind: 'alarm', code: 'MDC_EVT_HI_VAL_GT_LIM', unit: '', t: now, rt: now, priority: 'high', text: 'HR high', active: true, alarmId: 'hr-high' });
      if (ticks === 30) bodies.push({ kind: 'alarm', code: 'MDC_EVT_HI_VAL_GT_LIM', unit: '', t: now, rt: now, priority: 'high', text: 'HR high', active: false, alarmId: 'hr-high' });
      sending = sending.then(() => site.send(DEVICE, bodies)).catch(() => undefined);
    }, 200);

    control = await TestClient.connect(hub.url, token('specialist', CONF, 'Dr Control'));
    await control.ok('join', { conferenceId: CONF });
    const cpuBefore = ffmpegCpuSeconds();
    const reply = await control.ok('startRecording', { conferenceId: CONF });
    startedAt = reply.recording.startedAt as number;
    recordingId = reply.recording.recordingId as string;
    expect(reply.recording).to.include({ active: true, by: 'Dr Control' });
    const again = await control.request('startRecording', { conferenceId: CONF });
    expect(!again.ok && again.error.code).to.equal('conflict', 'one recording per conference');

    for (const { page } of pages) {
      await waitUntil(
        async () => page.evaluate(() => ((globalThis as any).hoichan.events as { name: string; data: any }[]).some((e) => e.name === 'recordingState' && e.data.active === true)),
        10_000,
        'recordingState at every peer',
      );
      await waitUntil(async () => (await page.locator('#recording-indicator:not([hidden])').count()) === 1, 10_000, 'the recording indicator shown');
    }
    const late = await TestClient.connect(hub.url, token('site', CONF, 'late-site'));
    const lateJoin = await late.ok('join', { conferenceId: CONF });
    expect(lateJoin.recording).to.include({ active: true, recordingId, by: 'Dr Control' });
    late.close();

    await new Promise((resolve) => setTimeout(resolve, RECORD_MS));
    const cpu = ffmpegCpuSeconds();
    const stopped = await control.ok('stopRecording', { conferenceId: CONF });
    expect(stopped.recording).to.include({ active: false, reason: 'requested' });
    const recordedS = (Date.now() - startedAt) / 1000;
    for (const { page } of pages) {
      await waitUntil(async () => (await page.locator('#recording-indicator[hidden]').count()) === 1, 10_000, 'the indicator off at every peer');
    }
    clearInterval(feed);
    feed = undefined;
    await sending;
    // The indicator goes off at once; the files are final when the manifest says stoppedAt.
    await waitUntil(() => manifestSchema.parse(JSON.parse(readFileSync(join(recDir, recordingId, 'manifest.json'), 'utf8'))).stoppedAt !== null, 30_000, 'the recording finalised');
    const finalisedS = (Date.now() - startedAt) / 1000;
    manifest = manifestSchema.parse(JSON.parse(readFileSync(join(recDir, recordingId, 'manifest.json'), 'utf8')));
    expect(manifest.stoppedAt).to.be.a('number');
    expect(manifest.stopReason).to.equal('requested');
    const folder = statSync(join(recDir, recordingId));
    expect(folder.mode & 0o777).to.equal(0o700);
    let bytes = 0;
    for (const name of readdirSync(join(recDir, recordingId))) {
      const st = statSync(join(recDir, recordingId, name));
      expect(st.mode & 0o777, name).to.equal(0o600);
      bytes += st.size;
    }
    // Every track is finalised; none lost to an ffmpeg crash. On a starved host a
    // browser may drop and rejoin (a new peer, new producers, new files): the
    // strict checks below are for the browsers that stayed, at least two of three.
    const sidecars = new Map<string, TrackSidecar>();
    for (const track of manifest.tracks) {
      const sidecar = sidecarSchema.parse(JSON.parse(readFileSync(join(recDir, recordingId, track.sidecar), 'utf8')));
      sidecars.set(track.producerId, sidecar);
      expect(sidecar.state, track.file).to.be.oneOf(['done', 'empty']);
      expect(sidecar.endedWallMs, track.file).to.be.a('number');
    }
    const stayed = [];
    for (const [i, { page }] of pages.entries()) if ((await peerIdOf(page)) === peerIds[i]) stayed.push(peerIds[i]!);
    const churn = manifest.tracks.length - 6;
    expect(stayed.length, 'browsers that stayed in the conference').to.be.at.least(2);
    const perMinute = 60 / recordedS;
    console.log(
      `      (3-peer recording, ${recordedS.toFixed(1)} s, files final ${(finalisedS - recordedS).toFixed(1)} s after stop: ${(bytes / 1e6).toFixed(2)} MB on disk = ${((bytes * perMinute) / 1e6).toFixed(1)} MB/min; ` +
        `ffmpeg CPU ${(cpu.seconds - cpuBefore.seconds).toFixed(2)} s over ${cpu.processes} processes = ${((((cpu.seconds - cpuBefore.seconds) * perMinute) / 60) * 100).toFixed(1)}% of one core; ` +
        `${manifest.tracks.length} tracks, ${stayed.length}/3 browsers stayed${churn > 0 ? `, ${churn} extra from a rejoin` : ''})`,
    );

    for (const peerId of stayed) {
      const own = [...sidecars.values()].filter((s) => s.peerId === peerId);
      for (const kind of ['audio', 'video'] as const) {
        const sidecar = own.find((s) => s.kind === kind)!;
        expect(sidecar, `${kind} track of ${peerId}`).to.not.equal(undefined);
        expect(sidecar.state, `${kind} of ${peerId}`).to.equal('done');
        const probe = ffprobe(join(recDir, recordingId, sidecar.file));
        expect(probe.codec).to.equal(kind === 'audio' ? 'opus' : 'vp8');
        const expected = (sidecar.endedWallMs! - sidecar.firstPacket!.wallMs) / 1000;
        expect(Math.abs(probe.duration - expected), `${kind} ${sidecar.file}: ffprobe ${probe.duration} s, recorded ${expected.toFixed(2)} s`).to.be.below(DURATION_TOLERANCE_S);
        expect(expected).to.be.above(RECORD_MS / 1000 - 3);
      }
    }

    // The clock mappings are kept: each file's first packet on the hub's clock, and
    // the sender's own RTCP clock for the SSRC the file holds (audio and video of one
    // browser on one capture clock). The skew between the two is measured, not
    // asserted: on a starved host a browser's send path delays audio and video
    // differently (docs/RECORDING.md, "One clock").
    for (const peerId of stayed) {
      const [audio, video] = (['audio', 'video'] as const).map((kind) => [...sidecars.values()].find((s) => s.peerId === peerId && s.kind === kind)!);
      expect(captureMs(audio!), 'audio sender report for the recorded SSRC').to.not.equal(undefined);
      expect(captureMs(video!), 'video sender report for the recorded SSRC').to.not.equal(undefined);
      const latency = (s: TrackSidecar) => s.firstPacket!.wallMs - captureMs(s)!;
      const frameMs = frameMsOf(join(recDir, recordingId, video!.file));
      console.log(`      (peer ${peerId.slice(0, 8)}: first packet sent ${latency(audio!).toFixed(1)} ms (audio) and ${latency(video!).toFixed(1)} ms (video) after capture; one frame ${frameMs.toFixed(1)} ms)`);
      expect(latency(audio!)).to.be.within(-50, 5000);
      expect(latency(video!)).to.be.within(-50, 5000);
    }

    // The readings: every line parses, seqs per device ascend, hub times do not go back.
    const lines = readFileSync(join(recDir, recordingId, 'readings.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { hubMs: number; event: string; deviceId?: string; readings?: { seq: number; kind: string }[] });
    let lastSeq = 0;
    let lastHub = 0;
    let waveforms = 0;
    let alarms = 0;
    for (const line of lines) {
      expect(line.hubMs).to.be.at.least(lastHub);
      lastHub = line.hubMs;
      if (line.event !== 'deviceReadings') continue;
      for (const r of line.readings!) {
        expect(r.seq).to.be.above(lastSeq);
        lastSeq = r.seq;
        if (r.kind === 'waveform') waveforms++;
        if (r.kind === 'alarm') alarms++;
      }
    }
    expect(waveforms).to.be.at.least(((RECORD_MS / 200) * 2) * 0.8);
    expect(alarms).to.equal(2);
    expect(lines[0]!.event).to.equal('deviceStatus', 'the devices at the start come first');
  });

  it('the review page plays a track with the ECG drawn at the same instant after a seek', async () => {
    const { page, consoleErrors } = await openPage(browser, `${hub.url}/review/${recordingId}#token=${token('specialist', CONF, 'Dr Review')}`);
    await waitUntil(async () => page.evaluate(() => (globalThis as any).hoichanReview?.ready === true), 30_000, 'review page ready');
    // Into the middle of the lead video's span (a file starts at its first packet, after the recording did).
    const leadId = await page.evaluate(() => (globalThis as any).hoichanReview.positions().leadProducerId as string);
    const lead = sidecarSchema.parse(JSON.parse(readFileSync(join(recDir, recordingId, `${leadId}.json`), 'utf8')));
    const seekTo = Math.round((lead.firstPacket!.wallMs + lead.endedWallMs!) / 2 - manifest.startedAt) / 1000;
    // (The file's span on the hub's clock: the page may put it up to the sender's send delay earlier.)
    await page.evaluate((s) => (globalThis as any).hoichanReview.seek(s), seekTo);
    await waitUntil(async () => page.evaluate((s) => {
      const p = (globalThis as any).hoichanReview.positions();
      return p.seekedTo === s && p.videoFrameWallMs !== null && p.waveformWallMs !== null;
    }, seekTo), 20_000, 'video frame and waveform at the seeked position');
    const p = await page.evaluate(() => (globalThis as any).hoichanReview.positions() as { videoFrameWallMs: number; waveformWallMs: number; targetWallMs: number; samplesDrawn: number; videos: number; leadZeroWallMs: number });
    const frameMs = frameMsOf(join(recDir, recordingId, lead.file));
    expect(frameMs).to.be.within(10, 500);
    console.log(`      (review at ${seekTo} s: frame ${(p.videoFrameWallMs - p.targetWallMs).toFixed(1)} ms from the target, waveform ${(p.waveformWallMs - p.videoFrameWallMs).toFixed(1)} ms from the frame; one frame ${frameMs.toFixed(1)} ms)`);
    await screenshot(page, 'review-seeked');
    expect(p.videos).to.be.at.least(2);
    expect(p.samplesDrawn).to.be.above(100);
    // The frame shown is the one the file has at that instant: the last with pts <= the target.
    const pts = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', join(recDir, recordingId, lead.file)])
      .toString()
      .trim()
      .split('\n')
      .map(Number)
      .sort((a, b) => a - b);
    // The page puts file time 0 at its capture instant (sender report) plus the
    // sender's smallest send delay: at or before the hub sent the first packet.
    const zero = p.leadZeroWallMs;
    expect(lead.firstPacket!.wallMs - zero, 'file zero vs first packet sent').to.be.within(-1, 1000);
    const targetS = (p.targetWallMs - zero) / 1000;
    const expectedFrameWallMs = zero + 1000 * pts.filter((x) => x <= targetS + 1e-6).pop()!;
    expect(Math.abs(p.videoFrameWallMs - expectedFrameWallMs), 'the frame shown is the seeked one').to.be.at.most(2);
    expect(Math.abs(p.videoFrameWallMs - p.targetWallMs)).to.be.below(1000);
    expect(Math.abs(p.videoFrameWallMs - p.waveformWallMs), 'waveform and video at one instant').to.be.at.most(frameMs);
    // Downloads: a range of a track (seeking), the readings; another conference's specialist gets 404.
    const track = manifest.tracks.find((t) => t.kind === 'video')!;
    const ranged = await fetch(`${hub.url}/api/recordings/${recordingId}/files/${track.file}`, { headers: { authorization: `Bearer ${token('specialist', CONF)}`, range: 'bytes=0-99' } });
    expect(ranged.status).to.equal(206);
    expect((await ranged.arrayBuffer()).byteLength).to.equal(100);
    const outsider = await fetch(`${hub.url}/api/recordings/${recordingId}/files/readings.jsonl`, { headers: { authorization: `Bearer ${token('specialist', 'another-conf')}` } });
    expect(outsider.status).to.equal(404);
    const bySite = await fetch(`${hub.url}/api/recordings/${recordingId}`, { headers: { authorization: `Bearer ${token('site', CONF)}` } });
    expect(bySite.status).to.equal(403);
    expect(consoleErrors).to.deep.equal([]);
  });
});
