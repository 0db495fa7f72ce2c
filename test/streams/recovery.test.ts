// A viewer whose link blips recovers its socket.io session (src/signaling/recoveryStore.ts):
// socket.io gives back the signaling events it missed but keeps no device event
// (it used to keep every device batch once per peer); the device gap comes from the
// device history, resumed from the seqs the viewer names in its handshake, each seq
// exactly once. The store is bounded: past signaling.recoveryMaxEvents the oldest
// go, and a viewer that missed one of them joins again instead of recovering.

import { once } from 'node:events';
import { createServer, connect, type Socket as NetSocket } from 'node:net';
import type { Reading } from '../../src/devices/reading.js';
import { Server } from 'socket.io';
import { NOT_RECOVERED_EVENTS, boundedRecoveryAdapter } from '../../src/signaling/recoveryStore.js';
import { signalingRecoveryEvicted } from '../../src/telemetry/metrics.js';
import { Viewer, expect, siteToken, sleep, waitFor } from '../agent/uplink-helpers.js';
import { TestClient, startTestHub, token } from '../support/hub.js';
import type { Hub } from '../../src/hub/Hub.js';

const CONF = 'conf-recovery';
const DEVICES = ['rec-ecg', 'rec-spo2'];

const hello = (siteId: string) => ({
  version: 1,
  siteId,
  clock: { offsetMs: 0, rttMs: 1 },
  devices: DEVICES.map((deviceId) => ({ deviceId, conferenceId: CONF, type: 'ecg', model: 'm', protocol: 'hl7-mllp', status: 'online', channels: [], acked: 0, lastSeq: 0 })),
});

/** One batch: a waveform chunk and a numeric. */
function batch(deviceId: string, from: number) {
  const t = Date.now();
  const readings: Reading[] = [
    { deviceId, seq: from, kind: 'waveform', code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', t, rt: t, sampleRate: 250, samples: Array.from({ length: 50 }, (_, i) => i % 7) },
    { deviceId, seq: from + 1, kind: 'numeric', code: 'MDC_ECG_HEART_RATE', unit: '/min', t, rt: t, value: 70 },
  ];
  return { deviceId, from, to: from + 1, readings };
}

/** The viewer's link drops and stays down (no reconnection) until the test calls socket.connect(). */
async function dropLink(viewer: Viewer): Promise<void> {
  viewer.socket.io.reconnection(false);
  const dropped = new Promise<void>((resolve) => viewer.socket.once('disconnect', () => resolve()));
  viewer.socket.io.engine.close();
  await dropped;
}

/**
 * A loopback proxy to the hub whose existing connections can go silent: nothing forwarded either way and no
 * close passed on, as when a link dies without a FIN. Connections made afterwards work.
 */
async function silentProxy(hubUrl: string) {
  const target = new URL(hubUrl);
  const live = new Set<() => void>();
  const sockets = new Set<NetSocket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    let silent = false;
    client.on('data', (chunk: Buffer) => silent || upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => silent || client.write(chunk));
    const end = () => {
      if (silent) return; // the hub must not hear of it
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    const silence = () => {
      silent = true;
    };
    live.add(silence);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    goSilent(): void {
      for (const silence of live) silence();
      live.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Silent ones included: the test is over.
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/** What socket.io's adapter keeps for recovering sockets of the main namespace (plain fields in its JavaScript). */
function stored(hub: Hub): Array<{ data: unknown[] }> {
  return (hub.io.of('/').adapter as unknown as { packets: Array<{ data: unknown[] }> }).packets;
}

describe('socket.io connection recovery: bounded, and device gaps from the history', function () {
  this.timeout(60_000);
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  async function site(hub: Hub, siteId: string) {
    const agent = await TestClient.connect(`${hub.url}/uplink`, siteToken(siteId, CONF));
    cleanup.push(() => agent.close());
    await agent.ok('hello', hello(siteId));
    const next = new Map(DEVICES.map((d) => [d, 1]));
    return {
      /** One batch per device; the seqs sent so far per device. */
      async send(rounds: number): Promise<void> {
        for (let i = 0; i < rounds; i++) {
          for (const deviceId of DEVICES) {
            const b = batch(deviceId, next.get(deviceId)!);
            expect((await agent.ok('batch', b)).acked).to.equal(b.to);
            next.set(deviceId, b.to + 1);
          }
        }
      },
      last: (deviceId: string) => next.get(deviceId)! - 1,
      status: (deviceId: string, status: 'online' | 'offline') => agent.ok('status', { devices: [{ deviceId, status, channels: [] }] }),
    };
  }

  it('gives a recovered viewer its missed signaling events from socket.io and its device gap from the history, each seq once; the store holds no device event', async () => {
    const hub = await startTestHub({ signaling: { reconnectGraceMs: 8000 } });
    cleanup.push(() => hub.close());
    const agent = await site(hub, 'site-recovery');
    await agent.send(5);
    const viewer = await Viewer.join(hub.url, CONF);
    cleanup.push(() => viewer.close());
    // Every payload, replays included, to count each seq's deliveries.
    const delivered = new Map<string, number[]>();
    viewer.socket.on('deviceReadings', (data: { deviceId: string; readings: Reading[]; gaps?: Array<{ from: number; to: number }> }) => {
      const seqs = delivered.get(data.deviceId) ?? [];
      delivered.set(data.deviceId, seqs);
      for (const r of data.readings) seqs.push(r.seq);
      for (const g of data.gaps ?? []) for (let s = g.from; s <= g.to; s++) seqs.push(s);
    });
    const peersJoined: string[] = [];
    viewer.socket.on('peerJoined', (p: { displayName: string }) => peersJoined.push(p.displayName));
    await agent.send(5);
    await waitFor(() => DEVICES.every((d) => viewer.lastSeq(d) === agent.last(d)), 10_000, 'viewer live');

    // The link drops; while it is down another specialist joins and the devices keep streaming.
    await dropLink(viewer);
    const other = await TestClient.connect(hub.url, token('specialist', CONF, 'Dr Other'));
    cleanup.push(() => other.close());
    await other.ok('join', { conferenceId: CONF, displayName: 'Dr Other' });
    await agent.send(20);
    // The SpO2 monitor goes offline meanwhile: a status change the viewer must learn on recovery.
    await agent.status('rec-spo2', 'offline');
    const statusesBefore = viewer.statuses.length;
    const kept = stored(hub).map((p) => p.data[0]);
    expect(kept, 'signaling events kept for recovery').to.include('peerJoined');
    expect(kept.filter((name) => NOT_RECOVERED_EVENTS.has(name as never)), 'device events kept for recovery').to.deep.equal([]);

    // It comes back within the grace period: same session, the missed peerJoined, then the device gap.
    viewer.socket.io.reconnection(true);
    const back = new Promise<void>((resolve) => viewer.socket.once('connect', () => resolve()));
    viewer.socket.connect();
    await back;
    expect(viewer.socket.recovered, 'session recovered').to.equal(true);
    await waitFor(() => peersJoined.includes('Dr Other'), 5000, 'the missed peerJoined');
    await waitFor(() => viewer.statuses.slice(statusesBefore).some((s) => s.deviceId === 'rec-spo2' && s.status === 'offline'), 5000, 'the status it missed');
    await agent.send(5);
    await waitFor(() => DEVICES.every((d) => viewer.lastSeq(d) === agent.last(d)), 10_000, () => `viewer caught up (${DEVICES.map((d) => `${viewer.lastSeq(d)}/${agent.last(d)}`)})`);
    await sleep(300);
    expect(viewer.joins, 'joined once').to.equal(1);
    expect(viewer.problems).to.deep.equal([]);
    for (const deviceId of DEVICES) {
      const seqs = delivered.get(deviceId)!;
      const first = seqs[0]!;
      // From the first seq the viewer got live, every later one exactly once (across the drop).
      const expected = Array.from({ length: agent.last(deviceId) - first + 1 }, (_, i) => first + i);
      expect([...seqs].sort((a, b) => a - b), `${deviceId} seqs`).to.deep.equal(expected);
    }
  });

  it('recovers a viewer that reconnects before the hub has seen its old connection drop (the old socket is closed first)', async () => {
    const hub = await startTestHub({ signaling: { reconnectGraceMs: 8000 } });
    cleanup.push(() => hub.close());
    const proxy = await silentProxy(hub.url);
    cleanup.push(() => proxy.close());
    const agent = await site(hub, 'site-stale');
    await agent.send(3);
    const viewer = await Viewer.join(proxy.url, CONF);
    cleanup.push(() => viewer.close());
    await waitFor(() => DEVICES.every((d) => viewer.lastSeq(d) === agent.last(d)), 10_000, 'viewer live');
    const peerIds = () => [...hub.io.of('/').sockets.values()].map((s) => (s.data as { peerId?: string }).peerId).filter(Boolean);
    const [peerId] = peerIds();

    // The path dies without a FIN: the hub keeps its socket open, the viewer gives up on it and reconnects at once.
    proxy.goSilent();
    await dropLink(viewer);
    expect(peerIds(), 'the hub still has the old socket').to.deep.equal([peerId]);
    await agent.send(5);
    viewer.socket.io.reconnection(true);
    viewer.socket.connect();
    await waitFor(() => viewer.socket.connected, 10_000, 'reconnected');
    expect(viewer.socket.recovered, 'recovered, not joined again').to.equal(true);
    expect(peerIds(), 'the same peer, on one socket').to.deep.equal([peerId]);
    await waitFor(() => DEVICES.every((d) => viewer.lastSeq(d) === agent.last(d)), 10_000, 'viewer caught up');
    expect(viewer.joins).to.equal(1);
    expect(viewer.problems).to.deep.equal([]);
  });

  it('drops the oldest signaling events past signaling.recoveryMaxEvents; a viewer that missed one joins again', async () => {
    const hub = await startTestHub({ signaling: { reconnectGraceMs: 8000, recoveryMaxEvents: 100 } });
    cleanup.push(() => hub.close());
    const agent = await site(hub, 'site-evict');
    await agent.send(3);
    const viewer = await Viewer.join(hub.url, CONF);
    cleanup.push(() => viewer.close());
    await waitFor(() => DEVICES.every((d) => viewer.lastSeq(d) === agent.last(d)), 10_000, 'viewer live');
    const evictedBefore = (await signalingRecoveryEvicted.get()).values[0]?.value ?? 0;

    await dropLink(viewer);
    // 70 joins and leaves of another specialist: 140 events for the viewer's room alone.
    const other = await TestClient.connect(hub.url, token('specialist', CONF, 'Dr Busy'));
    cleanup.push(() => other.close());
    for (let i = 0; i < 70; i++) {
      await other.ok('join', { conferenceId: CONF, displayName: 'Dr Busy' });
      await other.ok('leave', {});
      // Within signaling.requestsPerSecond (50).
      await sleep(45);
    }
    expect(stored(hub).length, 'events kept').to.be.at.most(100);
    expect((await signalingRecoveryEvicted.get()).values[0]?.value ?? 0, 'evicted').to.be.above(evictedBefore);
    await agent.send(3);

    viewer.socket.io.reconnection(true);
    viewer.socket.connect();
    await waitFor(() => viewer.joins === 2, 10_000, 'the viewer joins again');
    expect(viewer.socket.recovered).to.equal(false);
    // A new join: the devices' snapshot as a newcomer gets it, up to the newest seq.
    await waitFor(() => DEVICES.every((d) => viewer.lastSeq(d) === agent.last(d)), 10_000, 'viewer has the newest readings');
  });
});

describe('the bounded recovery store (socket.io server, no clients)', () => {
  const servers: Server[] = [];
  after(() => {
    for (const s of servers.splice(0)) void s.close();
  });

  function server(options: { graceMs: number; unnoticedMs: number; maxEvents: number }) {
    const io = new Server({
      connectionStateRecovery: { maxDisconnectionDuration: options.graceMs },
      adapter: boundedRecoveryAdapter({ ...options, maxSessions: 10 }),
    });
    servers.push(io);
    const adapter = io.of('/').adapter;
    const kept = () => (adapter as unknown as { packets: Array<{ id: string; data: unknown[] }> }).packets;
    const drop = (pid: string, rooms: string[]) => adapter.persistSession({ sid: `sid-${pid}`, pid, rooms, data: {} });
    const restore = async (pid: string, offset: string) => (await adapter.restoreSession(pid, offset)) as { missedPackets: unknown[][] } | null;
    return { io, kept, drop, restore };
  }

  it('keeps no device event, yet gives each the newest kept id as its offset', () => {
    const { io, kept } = server({ graceMs: 1000, unnoticedMs: 1000, maxEvents: 100 });
    io.to('peer-a').emit('peerJoined', { peerId: 'p1' });
    const id = kept()[0]!.id;
    // The packet as the adapter sees it, to read the offset it adds.
    const seen: unknown[][] = [];
    const broadcast = io.of('/').adapter.broadcast.bind(io.of('/').adapter);
    io.of('/').adapter.broadcast = (packet, opts) => {
      broadcast(packet, opts);
      seen.push(packet.data as unknown[]);
    };
    io.to('peer-a').emit('deviceReadings', { deviceId: 'd', readings: [] });
    io.to('peer-a').emit('deviceStatus', { deviceId: 'd' });
    expect(kept().map((p) => p.data[0])).to.deep.equal(['peerJoined']);
    expect(seen.map((d) => d[d.length - 1])).to.deep.equal([id, id]);
  });

  it('recovers a session whose last offset aged out with every kept event of its rooms, and only its rooms', async () => {
    const { io, kept, drop, restore } = server({ graceMs: 2000, unnoticedMs: 100, maxEvents: 100 });
    io.to('peer-a').emit('peerJoined', { peerId: 'old' });
    const aged = kept()[0]!.id;
    await sleep(2300);
    drop('pid-a', ['peer-a']);
    io.to('peer-a').emit('peerLeft', { peerId: 'x' });
    io.to('peer-b').emit('peerLeft', { peerId: 'y' });
    expect(kept().map((p) => p.id)).to.not.include(aged);
    const session = await restore('pid-a', aged);
    expect(session?.missedPackets.map((d) => [d[0], (d[1] as { peerId: string }).peerId])).to.deep.equal([['peerLeft', 'x']]);
  });

  it('does not recover a session that may have missed an event the count bound dropped, nor one past its grace', async () => {
    const { io, kept, drop, restore } = server({ graceMs: 300, unnoticedMs: 5000, maxEvents: 100 });
    io.to('peer-a').emit('peerJoined', { peerId: 'first' });
    const offset = kept()[0]!.id;
    drop('pid-a', ['peer-a']);
    for (let i = 0; i < 150; i++) io.to('peer-b').emit('activeSpeaker', { peerId: `s${i}`, producerId: 'p' });
    expect(kept()).to.have.length(100);
    expect(await restore('pid-a', offset)).to.equal(null);

    io.to('peer-c').emit('peerJoined', { peerId: 'c' });
    const offsetC = kept()[kept().length - 1]!.id;
    drop('pid-c', ['peer-c']);
    io.to('peer-c').emit('peerLeft', { peerId: 'c2' });
    await sleep(400);
    expect(await restore('pid-c', offsetC), 'past the grace').to.equal(null);
  });
});
