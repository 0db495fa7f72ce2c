import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IngestSender } from '../../src/devices/video/IngestSender.js';
import type { Hub } from '../../src/hub/Hub.js';
import { RecordingManager } from '../../src/recording/RecordingManager.js';
import { manifestSchema, sidecarSchema, type RecordingManifest, type TrackSidecar } from '../../src/recording/types.js';
import { TestClient, startTestHub, token, waitUntil } from '../support/hub.js';

// Recording without browsers: real ffmpeg senders into device-video ingests
// (VP8 and H.264), so tracks carry real media. Producers that come during a
// recording get their own file, the worker dying under the tracks finalises
// them (and the republished ingest gets a new file on the new router), and
// the bounds: disk floor, maximum duration, the conference closing, hub shutdown.

/** Until every listed track has carried media for `ms` (ffmpeg probes the first second; a starved host starts it late). */
const mediaFor = (dir: string, id: string, count: number, ms: number) => () => {
  const started = sidecarsOf(dir, manifestOf(dir, id)).filter((s) => s.firstPacket !== null);
  return started.length >= count && started.every((s) => Date.now() - s.firstPacket!.wallMs > ms);
};

const manifestOf = (dir: string, id: string): RecordingManifest => manifestSchema.parse(JSON.parse(readFileSync(join(dir, id, 'manifest.json'), 'utf8')));
const sidecarsOf = (dir: string, m: RecordingManifest): TrackSidecar[] => m.tracks.map((t) => sidecarSchema.parse(JSON.parse(readFileSync(join(dir, m.recordingId, t.sidecar), 'utf8'))));

function probe(path: string): { codec: string; format: string; duration: number } {
  const out = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name:format=format_name,duration', '-of', 'json', path]).toString()) as {
    streams: { codec_name: string }[];
    format: { format_name: string; duration?: string };
  };
  return { codec: out.streams[0]!.codec_name, format: out.format.format_name, duration: Number(out.format.duration) };
}

function sender(hub: Hub, conferenceId: string, deviceId: string, codec: 'VP8' | 'H264'): IngestSender {
  return new IngestSender({ hubUrl: hub.url, token: token('site', conferenceId, `site-${deviceId}`), conferenceId, deviceId, displayName: deviceId, source: 'device-video', codec, srtp: true, bitrateKbps: 300 });
}

describe('recording: tracks that come and go, worker death, bounds', function () {
  this.timeout(120_000);
  let hub: Hub;
  let dir: string;
  const senders: IngestSender[] = [];
  const clients: TestClient[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hoichan-rec-bounds-'));
    hub = await startTestHub({ media: { numWorkers: 1 }, recording: { dir, minFreeDiskMB: 1 } });
  });
  afterEach(async () => {
    for (const s of senders.splice(0)) await s.stop();
    for (const c of clients.splice(0)) c.close();
  });
  after(async () => {
    await hub?.close();
    if (!process.env.KEEP_RECORDING) rmSync(dir, { recursive: true, force: true });
  });

  it('a producer that arrives gets its own file; a worker death finalises every file and the republished one gets a new file', async () => {
    const conf = 'rec-churn';
    const dr = await TestClient.connect(hub.url, token('specialist', conf, 'Dr Churn'));
    clients.push(dr);
    await dr.ok('join', { conferenceId: conf });
    const vp8 = sender(hub, conf, 'scope-vp8', 'VP8');
    senders.push(vp8);
    await vp8.start();
    const { recording } = await dr.ok('startRecording', { conferenceId: conf });
    const id = recording.recordingId as string;
    await waitUntil(() => sidecarsOf(dir, manifestOf(dir, id)).some((s) => s.firstPacket !== null), 30_000, 'the VP8 track started');

    const h264 = sender(hub, conf, 'scope-h264', 'H264');
    senders.push(h264);
    await h264.start();
    await waitUntil(mediaFor(dir, id, 2, 3000), 40_000, 'both tracks recording for 3 s');

    const before = manifestOf(dir, id).tracks.map((t) => t.producerId);
    process.kill(hub.conferences.get(conf)!.worker.worker.pid, 'SIGKILL');
    // The two files are finalised though their router vanished mid-stream.
    await waitUntil(() => sidecarsOf(dir, manifestOf(dir, id)).filter((s) => before.includes(s.producerId)).every((s) => s.state !== 'recording'), 30_000, 'tracks finalised after the worker died');
    for (const s of sidecarsOf(dir, manifestOf(dir, id)).filter((x) => before.includes(x.producerId))) {
      expect(s.state, s.file).to.equal('done');
      const p = probe(join(dir, id, s.file));
      expect(p.codec).to.equal(s.codec.mimeType === 'video/H264' ? 'h264' : 'vp8');
      expect(p.format).to.equal(s.codec.mimeType === 'video/H264' ? 'matroska,webm' : 'matroska,webm');
      expect(s.file.endsWith(s.codec.mimeType === 'video/H264' ? '.mkv' : '.webm')).to.equal(true);
      // Plays, and holds no more than was sent. (Media time, not wall time: a
      // starved synthetic sender encodes fewer frames than wall time passes.)
      const recorded = (s.endedWallMs! - s.firstPacket!.wallMs) / 1000;
      expect(p.duration, `${s.file}: ffprobe ${p.duration} s, recorded ${recorded.toFixed(2)} s`).to.be.within(0.3, recorded + 1);
    }
    expect(hub.recording!.stateOf(conf).active, 'the recording goes on').to.equal(true);
    // The senders open new ingests on the replacement worker: new producers, new files.
    await waitUntil(() => sidecarsOf(dir, manifestOf(dir, id)).filter((s) => !before.includes(s.producerId) && s.firstPacket !== null && Date.now() - s.firstPacket.wallMs > 3000).length === 2, 50_000, 'new files after recovery, 3 s of media each');
    await dr.ok('stopRecording', { conferenceId: conf });
    await waitUntil(() => manifestOf(dir, id).stoppedAt !== null, 30_000, 'stopped');
    const all = sidecarsOf(dir, manifestOf(dir, id));
    expect(all).to.have.length(4);
    for (const s of all) expect(s.state, s.file).to.equal('done');
    // The consultation record lists the four track files, each ended, sized and signed by its specialist.
    const sessionId = hub.records!.recorder.sessionOf(conf)!;
    await hub.records!.queue.flush();
    const rows = (await hub.records!.store.sessionDetail(sessionId))!.recordings;
    expect(rows.map((r) => r.producerId).sort()).to.deep.equal(all.map((s) => s.producerId).sort());
    for (const r of rows) {
      const sidecar = all.find((s) => s.producerId === r.producerId)!;
      expect(r.filePath).to.equal(join(dir, id, sidecar.file));
      // stoppedBy is who stopped the recording, also on the files the worker's death had cut before.
      expect(r).to.include({ trackKind: 'video', mimeType: sidecar.codec.mimeType, startedBy: 'specialist-Dr Churn', stoppedBy: 'specialist-Dr Churn', bytes: sidecar.bytes });
      expect(r.endedAt, r.filePath).to.be.a('number');
    }
  });

  it('stops by itself at recording.maxDurationMinutes and when the conference closes, telling the peers', async () => {
    const conf = 'rec-bounded';
    // A hub of its own: 0.1 min = 6 s.
    const short = await startTestHub({ media: { numWorkers: 1 }, recording: { dir, minFreeDiskMB: 1, maxDurationMinutes: 0.1 } });
    const dr = await TestClient.connect(short.url, token('specialist', conf, 'Dr Bound'));
    clients.push(dr);
    try {
    await dr.ok('join', { conferenceId: conf });
    const first = (await dr.ok('startRecording', { conferenceId: conf })).recording.recordingId as string;
    const ended = await dr.waitFor('recordingState', (d) => d.active === false, 20_000);
    expect(ended).to.include({ recordingId: first, reason: 'max-duration' });
    await waitUntil(() => manifestOf(dir, first).stoppedAt !== null, 10_000, 'finalised');
    expect(manifestOf(dir, first)).to.deep.include({ stopReason: 'max-duration', stoppedBy: { sub: 'hub', role: 'system' } });

    const second = (await dr.ok('startRecording', { conferenceId: conf })).recording.recordingId as string;
    await dr.ok('leave', {});
    await waitUntil(() => manifestOf(dir, second).stoppedAt !== null, 10_000, 'stopped with the conference');
    expect(manifestOf(dir, second).stopReason).to.equal('conference-closed');
    expect(short.recording!.stateOf(conf).active).to.equal(false);
    } finally {
      dr.close();
      await short.close();
    }
  });

  it('refuses to start below the disk floor, and lists, serves and audits recordings for their own conference only', async () => {
    const conf = 'rec-floor';
    const dr = await TestClient.connect(hub.url, token('specialist', conf, 'Dr Floor'));
    clients.push(dr);
    await dr.ok('join', { conferenceId: conf });
    const starved = new RecordingManager({ ...hub.config.recording, dir, minFreeDiskMB: 1e12 }, undefined);
    const refused = await starved.start(hub.conferences.get(conf)!, { sub: 'specialist-x', role: 'specialist', displayName: 'X' }).then(
      () => 'started',
      (err: Error & { code?: string }) => `${err.code}: ${err.message}`,
    );
    expect(refused).to.match(/^unavailable: not enough disk space to record/);

    const listed = await fetch(`${hub.url}/api/conferences/rec-bounded/recordings`, { headers: { authorization: `Bearer ${token('specialist', 'rec-bounded')}` } });
    expect(listed.status).to.equal(200);
    const { recordings } = (await listed.json()) as { recordings: { recordingId: string }[] };
    expect(recordings).to.have.length(2);
    const other = await fetch(`${hub.url}/api/conferences/rec-bounded/recordings`, { headers: { authorization: `Bearer ${token('specialist', conf)}` } });
    expect(other.status).to.equal(403);
    const traversal = await fetch(`${hub.url}/api/recordings/${recordings[0]!.recordingId}/files/..%2Fmanifest.json`, { headers: { authorization: `Bearer ${token('specialist', 'rec-bounded')}` } });
    expect(traversal.status).to.equal(404);
    const manifest = await fetch(`${hub.url}/api/recordings/${recordings[0]!.recordingId}`, { headers: { authorization: `Bearer ${token('specialist', 'rec-bounded')}` } });
    expect(manifest.status).to.equal(200);
    await hub.audit!.flush?.();
    await waitUntil(async () => {
      const audit = await fetch(`${hub.url}/api/audit?type=recording`, { headers: { authorization: `Bearer ${token('engineer', '*')}` } });
      const types = ((await audit.json()) as { records: { type: string }[] }).records.map((r) => r.type);
      return types.includes('recording.start') && types.includes('recording.stop') && types.includes('recording.access');
    }, 10_000, 'recording.start, recording.stop and recording.access in the audit log');
  });

  it('retention deletes the folders of recordings that stopped more than records.retentionDays ago', () => {
    const manager = new RecordingManager({ ...hub.config.recording, dir }, undefined);
    const kept = manager.purgeExpired(30);
    expect(kept, 'recent recordings stay').to.deep.equal([]);
    const ids = readdirSync(dir).filter((n) => /^[0-9a-f-]{36}$/.test(n));
    expect(ids.length).to.be.at.least(3);
    const stopped = ids.filter((id) => manifestOf(dir, id).stoppedAt !== null);
    const removed = manager.purgeExpired(30, Date.now() + 31 * 86_400_000);
    expect(removed.sort()).to.deep.equal(stopped.sort());
    for (const id of removed) expect(existsSync(join(dir, id))).to.equal(false);
  });

  it('hub shutdown stops a running recording and finalises its files', async () => {
    const conf = 'rec-shutdown';
    const dr = await TestClient.connect(hub.url, token('specialist', conf, 'Dr Shut'));
    clients.push(dr);
    await dr.ok('join', { conferenceId: conf });
    const vp8 = sender(hub, conf, 'scope-shut', 'VP8');
    senders.push(vp8);
    await vp8.start();
    const id = (await dr.ok('startRecording', { conferenceId: conf })).recording.recordingId as string;
    await waitUntil(mediaFor(dir, id, 1, 3000), 40_000, 'the track recording for 3 s');
    await vp8.stop();
    senders.pop();
    await hub.close();
    const m = manifestOf(dir, id);
    expect(m.stopReason).to.equal('shutdown');
    for (const s of sidecarsOf(dir, m)) {
      expect(s.state).to.equal('done');
      // Media time: a starved synthetic sender encodes fewer frames than wall time passes.
      expect(probe(join(dir, id, s.file)).duration).to.be.above(0.3);
    }
    hub = undefined as unknown as Hub;
  });
});
