import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { Hub } from '../../src/hub/Hub.js';
import { IngestSender } from '../../src/devices/video/IngestSender.js';
import { TestClient, startTestHub, token, waitUntil } from '../support/hub.js';

/** argv of every running ffmpeg, as any local user can read it. */
function ffmpegCommandLines(): string[][] {
  const lines: string[][] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('ffmpeg')) lines.push(argv);
    } catch {
      // The process ended meanwhile.
    }
  }
  return lines;
}

describe('RTP ingest of device video (ffmpeg → PlainTransport → conference)', function () {
  this.timeout(60_000);
  let hub: Hub;
  const senders: IngestSender[] = [];
  const clients: TestClient[] = [];

  before(async () => {
    // Plain RTP is tested too, so this hub allows it (the default policy refuses it: test/hub/limits.test.ts).
    hub = await startTestHub({ media: { ingestIdleTimeoutMs: 3000, ingestRequireSrtp: false } });
  });
  afterEach(async () => {
    for (const s of senders.splice(0)) await s.stop();
    for (const c of clients.splice(0)) c.close();
  });
  after(() => hub.close());

  const post = (conferenceId: string, body: unknown, auth = token('site', conferenceId)) =>
    fetch(`${hub.url}/api/conferences/${conferenceId}/ingests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  async function producerBytes(conferenceId: string, producerId: string): Promise<number> {
    const peer = hub.conferences.get(conferenceId)?.peers.find((p) => p.producers.has(producerId));
    const stats = await peer?.producers.get(producerId)?.getStats();
    return stats?.reduce((sum, s) => sum + s.byteCount, 0) ?? 0;
  }

  for (const [codec, srtp] of [
    ['VP8', true],
    ['H264', false],
  ] as const) {
    it(`carries ${codec} over ${srtp ? 'SRTP' : 'plain RTP'} from ffmpeg to a producer the conference sees`, async () => {
      const conferenceId = `us-${codec.toLowerCase()}`;
      const viewer = await TestClient.connect(hub.url, token('specialist', conferenceId));
      clients.push(viewer);
      await viewer.ok('join', { conferenceId, displayName: 'Dr Viewer' });

      const sender = new IngestSender({
        hubUrl: hub.url,
        token: token('site', conferenceId),
        conferenceId,
        deviceId: 'us-1',
        displayName: 'Ultrasound Con Dao',
        source: 'ultrasound',
        codec,
        srtp,
        bitrateKbps: 600,
      });
      senders.push(sender);
      const info = await sender.start();
      expect(info).to.include({ deviceId: 'us-1', source: 'ultrasound', codec, ip: '127.0.0.1', clockRate: 90000 });
      expect(Boolean(info.srtp)).to.equal(srtp);

      const joined = await viewer.waitFor('peerJoined', (p) => p.peerId === info.ingestId);
      expect(joined).to.deep.equal({ peerId: info.ingestId, displayName: 'Ultrasound Con Dao', role: 'site' });
      const announced = await viewer.waitFor('newProducer', (p) => p.producerId === info.producerId);
      expect(announced).to.deep.equal({ producerId: info.producerId, peerId: info.ingestId, kind: 'video', source: 'ultrasound' });

      // Media really arrives (decrypted, for SRTP) at the producer.
      await waitUntil(async () => (await producerBytes(conferenceId, info.producerId)) > 50_000, 20_000, `${codec} bytes at the producer`);
      if (info.srtp) {
        // The key reached ffmpeg through its preset FIFO, not its command line (world-readable in /proc), and the FIFO is gone.
        const ffmpeg = ffmpegCommandLines().find((argv) => argv.some((a) => a.startsWith(`srtp://${info.ip}:${info.port}?`)));
        expect(ffmpeg, 'the ffmpeg process').to.not.equal(undefined);
        expect(ffmpeg!.join(' ')).to.not.include(info.srtp.keyBase64);
        const preset = ffmpeg![ffmpeg!.indexOf('-fpre') + 1]!;
        expect(preset).to.match(/hoichan-srtp-/);
        expect(existsSync(preset), 'preset removed after ffmpeg read it').to.equal(false);
      }
      const status = await fetch(`${hub.url}/api/conferences/${conferenceId}/ingests/${info.ingestId}`, {
        headers: { authorization: `Bearer ${token('site', conferenceId)}` },
      });
      expect(((await status.json()) as { bytesReceived: number }).bytesReceived).to.be.greaterThan(50_000);

      // A viewer can consume it.
      const recv = (await viewer.ok('createTransport', { direction: 'recv' })).transport.id;
      const caps = hub.conferences.get(conferenceId)!.router.rtpCapabilities;
      const { consumer } = await viewer.ok('consume', { transportId: recv, producerId: info.producerId, rtpCapabilities: caps });
      expect(consumer.rtpParameters.codecs[0].mimeType).to.equal(`video/${codec}`);

      await sender.stop();
      senders.pop();
      expect(await viewer.waitFor('producerClosed', (p) => p.producerId === info.producerId)).to.deep.equal({ producerId: info.producerId });
      await viewer.waitFor('peerLeft', (p) => p.peerId === info.ingestId);
    });
  }

  it('closes an ingest that receives nothing', async () => {
    const conferenceId = 'idle';
    const viewer = await TestClient.connect(hub.url, token('specialist', conferenceId));
    clients.push(viewer);
    await viewer.ok('join', { conferenceId, displayName: 'Dr Viewer' });
    const reply = await post(conferenceId, { deviceId: 'us-idle', codec: 'VP8', srtp: false });
    expect(reply.status).to.equal(201);
    const info = (await reply.json()) as { ingestId: string };
    // Nothing is sent: the idle watchdog (3 s here) closes it.
    await viewer.waitFor('peerLeft', (p) => p.peerId === info.ingestId, 15_000);
    expect(hub.conferences.get(conferenceId)!.ingests.get(info.ingestId)).to.equal(undefined);
  });

  it('the sender opens a new ingest when the hub loses its ingest', async () => {
    const conferenceId = 'lost';
    const viewer = await TestClient.connect(hub.url, token('specialist', conferenceId));
    clients.push(viewer);
    await viewer.ok('join', { conferenceId, displayName: 'Dr Viewer' });
    const sender = new IngestSender({
      hubUrl: hub.url,
      token: token('site', conferenceId),
      conferenceId,
      deviceId: 'us-2',
      source: 'ultrasound',
      codec: 'VP8',
      srtp: true,
      bitrateKbps: 400,
      checkEveryMs: 300,
    });
    senders.push(sender);
    const first = await sender.start();
    const reopened = new Promise<{ ingestId: string; producerId: string }>((resolve) => sender.once('sending', resolve));
    hub.conferences.get(conferenceId)!.ingests.close(first.ingestId); // as when a worker restarts
    await viewer.waitFor('peerLeft', (p) => p.peerId === first.ingestId);
    const second = await reopened;
    expect(second.ingestId).to.not.equal(first.ingestId);
    await viewer.waitFor('newProducer', (p) => p.producerId === second.producerId);
    await waitUntil(async () => (await producerBytes(conferenceId, second.producerId)) > 10_000, 20_000, 'bytes on the new ingest');
  });

  it('answers bad requests with clear errors', async () => {
    const badCodec = await post('errs', { deviceId: 'us-1', codec: 'MJPEG' });
    expect(badCodec.status).to.equal(400);
    expect(((await badCodec.json()) as any).error.message).to.match(/^codec:/);
    const badJson = await post('errs', '{ nope');
    expect(badJson.status).to.equal(400);
    expect(((await badJson.json()) as any).error.message).to.equal('body: not valid JSON');
    const wrongConference = await post('errs', { deviceId: 'us-1' }, token('site', 'another-conference'));
    expect(wrongConference.status).to.equal(403);
    const engineer = await post('errs', { deviceId: 'us-1' }, token('engineer', '*'));
    expect(engineer.status).to.equal(403);
    const anonymous = await fetch(`${hub.url}/api/conferences/errs/ingests`, { method: 'POST' });
    expect(anonymous.status).to.equal(401);

    const first = await post('errs', { deviceId: 'us-dup', srtp: false });
    expect(first.status).to.equal(201);
    const duplicate = await post('errs', { deviceId: 'us-dup', srtp: false });
    expect(duplicate.status).to.equal(409);
    const { ingestId } = (await first.json()) as { ingestId: string };
    const del = await fetch(`${hub.url}/api/conferences/errs/ingests/${ingestId}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token('site', 'errs')}` },
    });
    expect(del.status).to.equal(204);
    const again = await fetch(`${hub.url}/api/conferences/errs/ingests/${ingestId}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token('site', 'errs')}` },
    });
    expect(again.status).to.equal(404);
  });
});
