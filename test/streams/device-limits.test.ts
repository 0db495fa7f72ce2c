// Resource bounds per site on the device path (issue 10): devices per site,
// devices forgotten once their site is gone, a join replay bounded in bytes,
// an uplink rate counted in bytes as well as readings, and metric labels only
// from known values.

import { once } from 'node:events';
import { createServer, connect, type Socket as NetSocket } from 'node:net';
import { io } from 'socket.io-client';
import { readingBytes } from '../../src/streams/history/deviceHistory.js';
import type { Reading } from '../../src/devices/reading.js';
import { peerBacklog } from '../../src/streams/index.js';
import { deviceMetrics } from '../../src/telemetry/deviceMetrics.js';
import { Viewer, expect, siteToken, sleep, waitFor } from '../agent/uplink-helpers.js';
import { TestClient, startTestHub, token } from '../support/hub.js';

const CONF = 'conf-limits';

function device(deviceId: string, conferenceId = CONF) {
  return { deviceId, conferenceId, type: 'ecg', model: 'm', protocol: 'hl7-mllp', status: 'online', channels: [], acked: 0, lastSeq: 0 };
}
const hello = (siteId: string, ids: string[]) => ({ version: 1, siteId, clock: { offsetMs: 0, rttMs: 1 }, devices: ids.map((id) => device(id)) });

function waveforms(deviceId: string, from: number, count: number, samples: number): Reading[] {
  const t = Date.now();
  return Array.from({ length: count }, (_, i) => ({
    deviceId,
    seq: from + i,
    kind: 'waveform' as const,
    code: 'MDC_ECG_ELEC_POTL_II',
    unit: 'mV',
    t: t + i,
    rt: t + i,
    sampleRate: 500,
    samples: Array.from({ length: samples }, (_, j) => (j + i) % 10),
  }));
}
const batchOf = (deviceId: string, rs: Reading[]) => ({ deviceId, from: rs[0]!.seq, to: rs[rs.length - 1]!.seq, readings: rs });

async function joinAndCollect(url: string, conferenceId: string) {
  const socket = io(url, { auth: { token: token('specialist', conferenceId, 'v') }, transports: ['websocket'], forceNew: true, reconnection: false });
  const events: Array<{ deviceId: string; readings: Reading[]; replay?: true; wire: number }> = [];
  socket.on('deviceReadings', (data: { deviceId: string; readings: Reading[]; replay?: true }) => events.push({ ...data, wire: Buffer.byteLength(JSON.stringify(data)) }));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  const reply = await socket.emitWithAck('join', { conferenceId, displayName: 'V' });
  if (!reply.ok) throw new Error(`join: ${reply.error.message}`);
  return { socket, events, reply, replyBytes: Buffer.byteLength(JSON.stringify(reply)) };
}

/** A loopback proxy to the hub whose hub-to-client direction can stop reading: a viewer that does not read. */
async function stallingProxy(hubUrl: string) {
  const target = new URL(hubUrl);
  const upstreams: NetSocket[] = [];
  let stalled = false;
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    upstreams.push(upstream);
    client.pipe(upstream);
    // Not piped: a paused upstream must stay paused (pipe resumes its source on drain).
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    if (stalled) upstream.pause();
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    stall(): void {
      stalled = true;
      for (const u of upstreams) u.pause();
    },
    resume(): void {
      stalled = false;
      for (const u of upstreams) u.resume();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function discarded(reason: string): Promise<number> {
  return (await deviceMetrics.readingsDiscarded.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

describe('device-stream limits per site', function () {
  this.timeout(90_000);
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  it('refuses the site\u2019s device past devices.maxDevicesPerSite with limit_exceeded; devices the site replaced make room', async () => {
    const hub = await startTestHub({ devices: { maxDevicesPerSite: 3 } });
    cleanup.push(() => hub.close());
    const a = await TestClient.connect(`${hub.url}/uplink`, siteToken('site-cap', CONF));
    cleanup.push(() => a.close());
    const first = await a.ok('hello', hello('site-cap', ['cap-1', 'cap-2', 'cap-3', 'cap-4']));
    expect(first.devices.map((d: any) => d.deviceId)).to.deep.equal(['cap-1', 'cap-2', 'cap-3']);
    expect(first.rejected).to.have.length(1);
    expect(first.rejected[0]).to.include({ deviceId: 'cap-4', code: 'limit_exceeded' });
    expect(first.rejected[0].message).to.match(/devices\.maxDevicesPerSite = 3/);
    // Another site is not affected.
    const other = await TestClient.connect(`${hub.url}/uplink`, siteToken('site-other', CONF));
    cleanup.push(() => other.close());
    expect((await other.ok('hello', hello('site-other', ['oth-1']))).rejected).to.deep.equal([]);

    // The agent is reconfigured with other devices: the old ones (offline, no longer announced) give way.
    a.close();
    const b = await TestClient.connect(`${hub.url}/uplink`, siteToken('site-cap', CONF));
    cleanup.push(() => b.close());
    await waitFor(() => hub.streams!.stats().filter((s) => s.siteId === 'site-cap').every((s) => s.status === 'offline'), 5000, 'old connection gone');
    const second = await b.ok('hello', hello('site-cap', ['new-1', 'new-2', 'new-3', 'new-4']));
    expect(second.devices.map((d: any) => d.deviceId)).to.deep.equal(['new-1', 'new-2', 'new-3']);
    expect(second.rejected.map((r: any) => [r.deviceId, r.code])).to.deep.equal([['new-4', 'limit_exceeded']]);
    expect(hub.streams!.stats().filter((s) => s.siteId === 'site-cap').map((s) => s.deviceId).sort()).to.deep.equal(['new-1', 'new-2', 'new-3']);
  });

  it('forgets a device whose site has been gone for devices.deviceTtlMs: no longer listed on join', async () => {
    const hub = await startTestHub({ devices: { deviceTtlMs: 500 } });
    cleanup.push(() => hub.close());
    const agent = await TestClient.connect(`${hub.url}/uplink`, siteToken('site-ttl', CONF));
    await agent.ok('hello', hello('site-ttl', ['ttl-1']));
    const online = await joinAndCollect(hub.url, CONF);
    cleanup.push(() => online.socket.close());
    expect(online.reply.devices.map((d: any) => [d.deviceId, d.status])).to.deep.equal([['ttl-1', 'online']]);
    agent.close();
    await waitFor(() => hub.streams!.stats()[0]?.status === 'offline', 5000, 'device offline');
    const offline = await joinAndCollect(hub.url, CONF);
    cleanup.push(() => offline.socket.close());
    expect(offline.reply.devices.map((d: any) => [d.deviceId, d.status])).to.deep.equal([['ttl-1', 'offline']]);
    await sleep(700);
    const later = await joinAndCollect(hub.url, CONF);
    cleanup.push(() => later.socket.close());
    expect(later.reply.devices).to.deep.equal([]);
    await waitFor(() => hub.streams!.stats().length === 0, 5000, 'the sweep forgets it');
  });

  it('bounds a join\u2019s replay by devices.maxReplayBytes: newest waveforms first, latest numerics and alarms always', async () => {
    const maxReplayBytes = 256 * 1024;
    const hub = await startTestHub({ devices: { maxReplayBytes, uplinkBytesPerSecond: 1e9, uplinkBytesBurst: 1e9 } });
    cleanup.push(() => hub.close());
    const agent = await TestClient.connect(`${hub.url}/uplink`, siteToken('site-replay', CONF));
    cleanup.push(() => agent.close());
    const ids = ['rep-1', 'rep-2'];
    await agent.ok('hello', hello('site-replay', ids));
    for (const id of ids) {
      // 60 waveforms of 10,000 samples (~80 kB each, estimated): ~4.8 MB per device, then a numeric and an alarm.
      let seq = 1;
      for (let i = 0; i < 6; i++, seq += 10) await agent.ok('batch', batchOf(id, waveforms(id, seq, 10, 10_000)));
      const t = Date.now() + 100;
      const tail: Reading[] = [
        { deviceId: id, seq, kind: 'numeric', code: 'MDC_ECG_HEART_RATE', unit: '/min', t, rt: t, value: 72 },
        { deviceId: id, seq: seq + 1, kind: 'alarm', code: 'MDC_EVT_ECG_TACHY', unit: '', t, rt: t, priority: 'medium', text: 'TACHY', active: true },
      ];
      await agent.ok('batch', batchOf(id, tail));
    }
    const viewer = await joinAndCollect(hub.url, CONF);
    cleanup.push(() => viewer.socket.close());
    await waitFor(() => ids.every((id) => viewer.events.some((e) => e.deviceId === id && e.replay)), 10_000, 'both replays');
    const replay = viewer.events.filter((e) => e.replay);
    const replayed = replay.flatMap((e) => e.readings);
    const waveformBytes = replayed.filter((r) => r.kind === 'waveform').reduce((sum, r) => sum + readingBytes(r), 0);
    expect(waveformBytes, 'estimated waveform bytes replayed').to.be.at.most(maxReplayBytes);
    expect(replay.reduce((sum, e) => sum + e.wire, 0) + viewer.replyBytes, 'bytes on the wire for the join').to.be.below(maxReplayBytes + 16 * 1024);
    for (const id of ids) {
      const mine = replayed.filter((r) => r.deviceId === id);
      expect(mine.filter((r) => r.kind !== 'waveform').map((r) => r.kind), `${id} latest values`).to.deep.equal(['numeric', 'alarm']);
      const waves = mine.filter((r) => r.kind === 'waveform').map((r) => r.seq);
      expect(waves.length, `${id} waveforms`).to.be.greaterThan(0);
      // The newest ones, contiguous up to the last waveform.
      expect(waves).to.deep.equal(Array.from({ length: waves.length }, (_, i) => 60 - waves.length + 1 + i));
    }
  });

  it('counts the uplink rate in bytes too: max-size waveform batches are refused with rate_limited past devices.uplinkBytesPerSecond', async () => {
    const hub = await startTestHub({ devices: { uplinkBytesPerSecond: 100_000, uplinkBytesBurst: 5_000_000 } });
    cleanup.push(() => hub.close());
    const agent = await TestClient.connect(`${hub.url}/uplink`, siteToken('site-bytes', CONF));
    cleanup.push(() => agent.close());
    await agent.ok('hello', hello('site-bytes', ['bytes-1']));
    // 40 readings (far under the 10,000 readings/s limit) of 10,000 samples: ~3.2 MB estimated each,
    // so the second batch needs ~14 s of refill at 100 kB/s.
    expect((await agent.ok('batch', batchOf('bytes-1', waveforms('bytes-1', 1, 40, 10_000)))).acked).to.equal(40);
    const refused = await agent.request('batch', batchOf('bytes-1', waveforms('bytes-1', 41, 40, 10_000)));
    expect(refused.ok).to.equal(false);
    expect((refused as any).error.code).to.equal('rate_limited');
    expect((refused as any).error.message).to.match(/100000 bytes\/s/);
    expect(hub.streams!.stats()[0]!.stored).to.equal(40);
  });

  it('maps parseErrors keys to known protocols or "other": invented keys make no metric series', async () => {
    const hub = await startTestHub();
    cleanup.push(() => hub.close());
    const agent = await TestClient.connect(`${hub.url}/uplink`, siteToken('site-parse', CONF));
    cleanup.push(() => agent.close());
    await agent.ok('hello', hello('site-parse', ['parse-1']));
    const series = async () => (await deviceMetrics.parseErrors.get()).values.map((v) => [v.labels.protocol, v.value] as [string, number]);
    const value = async (protocol: string) => (await series()).find(([p]) => p === protocol)?.[1] ?? 0;
    const [hl7, other] = [await value('hl7-mllp'), await value('other')];
    const invented = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`invented-${i}`, 1]));
    await agent.ok('status', { devices: [], parseErrors: { 'hl7-mllp': 2, ...invented } });
    await agent.ok('status', { devices: [], parseErrors: { 'hl7-mllp': 3, ...invented, 'invented-0': 4 } });
    expect(await value('hl7-mllp')).to.equal(hl7 + 3);
    expect(await value('other')).to.equal(other + 53);
    const labels = (await series()).map(([p]) => p);
    expect(labels.filter((p) => p.startsWith('invented'))).to.deep.equal([]);
    expect(labels.every((p) => ['hl7-mllp', 'cyton', 'cms50', 'opcua', 'other'].includes(p))).to.equal(true);
  });

  it('withholds waveforms from a peer that does not read (devices.maxPeerBacklogBytes), then numerics past twice it, as slow-reader gaps; alarms always go', async () => {
    const maxPeerBacklogBytes = 256 * 1024;
    // Long pings: a stalled reader must not be dropped for a missed pong while the test fills its socket.
    const hub = await startTestHub({
      signaling: { pingIntervalMs: 15_000, pingTimeoutMs: 10_000, reconnectGraceMs: 5000 },
      devices: { maxPeerBacklogBytes, uplinkBytesPerSecond: 1e9, uplinkBytesBurst: 1e9 },
    });
    cleanup.push(() => hub.close());
    const proxy = await stallingProxy(hub.url);
    cleanup.push(() => proxy.close());
    const agent = await TestClient.connect(`${hub.url}/uplink`, siteToken('site-slow', CONF));
    cleanup.push(() => agent.close());
    await agent.ok('hello', hello('site-slow', ['slow-1']));
    const viewer = await Viewer.join(proxy.url, CONF, { resume: false });
    cleanup.push(() => viewer.close());
    const peerId = [...hub.io.of('/').sockets.values()].find((s) => (s.data as { peerId?: string }).peerId)?.data.peerId as string;
    expect(peerId).to.be.a('string');
    const before = await discarded('slow_reader');

    // The viewer stops reading; the site sends ~25 MB of waveforms (38 of 10,000 samples, one heart rate and one alarm a batch).
    proxy.stall();
    let seq = 1;
    let most = 0;
    for (let i = 0; i < 30; i++) {
      const t = Date.now();
      const rs: Reading[] = [
        ...waveforms('slow-1', seq, 38, 10_000),
        { deviceId: 'slow-1', seq: seq + 38, kind: 'numeric', code: 'MDC_ECG_HEART_RATE', unit: '/min', t, rt: t, value: 60 + i },
        { deviceId: 'slow-1', seq: seq + 39, kind: 'alarm', code: 'MDC_EVT_ECG_TACHY', unit: '', t, rt: t, priority: 'medium', text: 'TACHY', active: i % 2 === 0, alarmId: `tachy-${i >> 1}` },
      ];
      await agent.ok('batch', batchOf('slow-1', rs));
      seq += 40;
      most = Math.max(most, peerBacklog(hub.io, peerId));
    }
    const last = seq - 1;
    expect(await discarded('slow_reader'), 'waveforms withheld').to.be.greaterThan(before);
    // Queued for the peer: twice the bound (numerics stop there), plus at most the event that crossed it and the small events after it.
    expect(most, 'bytes queued towards the stalled peer').to.be.below(2 * maxPeerBacklogBytes + 2 * 1024 * 1024);

    // It reads again: every seq is accounted for (readings or slow-reader gaps), every alarm arrived, heart rates
    // until it was stalled and none while it was.
    proxy.resume();
    await waitFor(() => viewer.lastSeq('slow-1') >= last, 30_000, () => `viewer catches up (at ${viewer.lastSeq('slow-1')} of ${last})`);
    expect(viewer.problems).to.deep.equal([]);
    const got = viewer.readings.get('slow-1')!;
    expect(got.filter((r) => r.kind === 'alarm').map((r) => r.seq)).to.deep.equal(Array.from({ length: 30 }, (_, i) => (i + 1) * 40));
    const rates = got.filter((r) => r.kind === 'numeric').map((r) => r.seq);
    expect(rates.length, 'heart rates delivered').to.be.above(0).and.below(30);
    const gaps = viewer.gaps.get('slow-1') ?? [];
    const withheldRate = (i: number) => gaps.some((g: any) => g.reason === 'slow-reader' && g.from <= i * 40 - 1 && g.to >= i * 40 - 1);
    expect(Array.from({ length: 30 }, (_, i) => i + 1).filter(withheldRate).length, 'heart rates withheld').to.equal(30 - rates.length);
  });
});
