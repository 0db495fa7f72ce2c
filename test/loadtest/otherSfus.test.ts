import { expect } from 'chai';
import { networkInterfaces } from 'node:os';
import { runLoadtest, type LoadtestOptions } from '../../src/loadtest/run.js';
import type { LoadtestReport } from '../../src/loadtest/report.js';
import { loadAudioClip, loadVideoClip, type VideoCodec } from '../../src/loadtest/media.js';
import { startBareServer, type BareServer } from '../../scripts/bench/bare/server.js';
import { ensureJanus, JanusServer, JanusSession } from '../../scripts/bench/support/janus.js';
import { janusClients, offeredStreams } from '../../scripts/bench/webrtc/janusClients.js';
import { TEST_SECRET } from '../support/hub.js';

// The other rows of `npm run bench:webrtc`: the same loadtest clients against
// bare mediasoup (scripts/bench/bare/server.ts, Hoichan's signaling subset)
// and Janus VideoRoom (scripts/bench/webrtc/janusClients.ts). Real mediasoup,
// real Janus, real libdatachannel peers.

const options = (hubUrl: string, conferenceId: string, subscribers: number, video: VideoCodec = 'vp8'): LoadtestOptions => ({
  hubUrl,
  conferenceId,
  tokenSecret: TEST_SECRET,
  publishers: 1,
  subscribers,
  durationSeconds: 4,
  video,
  audioOnly: false,
  joinRate: 20,
});

function expectEveryTrackFlows(report: LoadtestReport, subscribers: number): void {
  expect(report.failures, JSON.stringify(report.failures)).to.deep.include({ total: 0 });
  for (const kind of ['video', 'audio'] as const) {
    const t = report.tracks.find((x) => x.kind === kind)!;
    expect(t.tracks, kind).to.equal(subscribers);
    expect(t.silentTracks, kind).to.equal(0);
    expect(t.lossPercent, kind).to.be.below(5);
  }
  const video = report.tracks.find((t) => t.kind === 'video')!;
  // The publisher's 720p clip is about 1.5 Mb/s.
  expect(video.bitrateKbpsPerTrack).to.be.within(500, 3000);
}

describe('loadtest clients against the other SFUs of bench:webrtc', function () {
  this.timeout(120000);

  before(function () {
    this.timeout(600000);
    loadAudioClip();
    loadVideoClip('vp8');
    loadVideoClip('h264');
  });

  describe('bare mediasoup (Hoichan signaling subset)', () => {
    let server: BareServer;
    before(async () => {
      server = await startBareServer(39820, { page: false });
    });
    after(async () => {
      await server?.close();
    });

    it('publishes and every subscriber receives video and audio; conferences are apart', async () => {
      const [a, b] = await Promise.all([runLoadtest(options(server.url, 'bare-a', 3)), runLoadtest(options(server.url, 'bare-b', 2))]);
      expectEveryTrackFlows(a, 3);
      // One producer pair per conference: b's subscribers did not consume a's publisher.
      expectEveryTrackFlows(b, 2);
    });

    it('carries the H.264 publisher (the bench\'s H.264 rows): its router has the profile the loadtest offers', async () => {
      expectEveryTrackFlows(await runLoadtest(options(server.url, 'bare-h264', 2, 'h264')), 2);
    });

    it('subscribers that joined before the publisher get its producers by newProducer (the bench\'s subscriber-only generators)', async () => {
      const subscribers = runLoadtest({ ...options(server.url, 'bare-late', 2), publishers: 0, durationSeconds: 6 });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const publisher = await runLoadtest({ ...options(server.url, 'bare-late', 0), durationSeconds: 4 });
      expect(publisher.failures.total).to.equal(0);
      expectEveryTrackFlows(await subscribers, 2);
    });
  });

  describe('Janus VideoRoom (HTTP API)', () => {
    const iceAddress = Object.values(networkInterfaces())
      .flatMap((l) => l ?? [])
      .find((a) => a.family === 'IPv4' && !a.internal)?.address;
    let server: JanusServer | undefined;
    let admin: JanusSession | undefined;
    let handle = 0;

    before(async function () {
      // Installed on first use, as the benches do (Debian's janus, apt-get as root or passwordless sudo); skipped only when that cannot be done.
      this.timeout(420_000);
      const janus = ensureJanus();
      if (!janus.ok) {
        console.log(`      Janus rows not tested: ${janus.reason}`);
        return this.skip();
      }
      if (!iceAddress) return this.skip(); // Janus gathers no loopback candidates
      // Threaded as bench:webrtc's default Janus row: a fixed pool of 2 event loops (start() refuses a Janus that does not report them).
      server = await JanusServer.start({ httpPort: 18900 + (process.pid % 50), rtpPortRange: '36000-36499', iceAddress, eventLoops: 2 });
      admin = await JanusSession.create(server.base);
      handle = await admin.attach();
    });
    after(async () => {
      await admin?.close();
      await server?.stop();
    });

    it('runs the event loops it was configured with (general.event_loops), as Janus reports them', async () => {
      const info = await server!.post('/info', undefined);
      expect(info['static-event-loops']).to.equal(2);
    });

    it('a WebRTC publisher and WebRTC subscribers through Janus: every subscriber receives video and audio', async () => {
      await admin!.request(handle, { request: 'create', room: 7001, publishers: 2, videocodec: 'vp8', audiocodec: 'opus' });
      const report = await runLoadtest(options(server!.base, '7001', 3), { clients: janusClients });
      expectEveryTrackFlows(report, 3);
      expect(report.publisherSide.sendErrors).to.equal(0);
    });

    it('an H.264 room (videocodec h264, profile 42e01f) carries the loadtest\'s H.264 publisher to every subscriber', async () => {
      await admin!.request(handle, { request: 'create', room: 7002, publishers: 2, videocodec: 'h264', h264_profile: '42e01f', audiocodec: 'opus' });
      // The subscribers refuse an offer of another codec (janusClients.ts), so this fails if Janus fell back to VP8.
      expectEveryTrackFlows(await runLoadtest(options(server!.base, '7002', 3, 'h264'), { clients: janusClients }), 3);
    });

    it('an H.264 subscriber refuses a room that offers VP8', async () => {
      await admin!.request(handle, { request: 'create', room: 7003, publishers: 2, videocodec: 'vp8', audiocodec: 'opus' });
      const vp8Publisher = runLoadtest({ ...options(server!.base, '7003', 0), durationSeconds: 6 }, { clients: janusClients });
      // The subscriber joins the room's publisher: wait until Janus lists it.
      for (let tries = 0; ; tries++) {
        const listed = await admin!.request(handle, { request: 'listparticipants', room: 7003 });
        if ((listed.participants as { publisher?: boolean }[]).some((p) => p.publisher)) break;
        if (tries > 100) throw new Error('the VP8 publisher never joined room 7003');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const h264Subscribers = await runLoadtest({ ...options(server!.base, '7003', 1, 'h264'), publishers: 0 }, { clients: janusClients });
      expect(h264Subscribers.failures.total).to.equal(1);
      expect(h264Subscribers.failures.examples.join('\n')).to.match(/Janus offers vp8 video, not h264/);
      expect((await vp8Publisher).failures.total).to.equal(0);
    });

    it('reads the streams of a subscriber offer: mid, SSRC, RTX', () => {
      const sdp = [
        'v=0',
        'o=- 1 1 IN IP4 127.0.0.1',
        's=VideoRoom 7001',
        't=0 0',
        'm=audio 9 UDP/TLS/RTP/SAVPF 111',
        'a=mid:0',
        'a=sendonly',
        'a=rtpmap:111 opus/48000/2',
        'a=ssrc:11 cname:janus',
        'm=video 9 UDP/TLS/RTP/SAVPF 96 97',
        'a=mid:1',
        'a=sendonly',
        'a=rtpmap:96 VP8/90000',
        'a=rtpmap:97 rtx/90000',
        'a=fmtp:97 apt=96',
        'a=ssrc-group:FID 22 23',
        'a=ssrc:22 cname:janus',
        'a=ssrc:23 cname:janus',
        'm=application 0 UDP/DTLS/SCTP webrtc-datachannel',
        '',
      ].join('\r\n');
      expect(offeredStreams(sdp)).to.deep.equal([
        { mid: '0', kind: 'audio', codec: 'opus', clockRate: 48000, ssrc: 11 },
        { mid: '1', kind: 'video', codec: 'vp8', clockRate: 90000, ssrc: 22, rtx: { payloadType: 97, ssrc: 23 } },
      ]);
    });
  });
});
