import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, connect, type Server } from 'node:net';
import { seededRandom } from '../../src/sim/random.js';
import { LinkEmulator } from '../../src/links/LinkEmulator.js';
import { LinkDirection, UDP_OVERHEAD_BYTES, wireBytesOf } from '../../src/links/linkModel.js';
import { LINK_PROFILES, linkProfile, type LinkProfile } from '../../src/links/profiles.js';
import { waitUntil } from '../support/hub.js';

const spec = (over: Partial<LinkDirection['spec']> = {}) => ({ rateBps: 800_000, delayMs: 50, jitterMs: 0, loss: 0, queueBytes: 1_000_000, ...over });

describe('link model (one direction, pure)', () => {
  it('serializes at the line rate counting IP/UDP headers', () => {
    const link = new LinkDirection(spec(), seededRandom(1));
    // 972-byte payloads are 1000 bytes on the wire: 10 ms each at 800 kb/s.
    const verdicts = Array.from({ length: 100 }, () => link.offer(1000 - UDP_OVERHEAD_BYTES, 0));
    const last = verdicts.at(-1)!;
    expect(last.deliver).to.equal(true);
    if (last.deliver) expect(last.deliverAtMs).to.be.closeTo(100 * 10 + 50, 1e-6);
    expect(link.queuedBytes(0)).to.equal(100_000);
    expect(link.queuedBytes(500)).to.equal(50_000);
    expect(link.drainedBelowAt(20_000, 500)).to.be.closeTo(800, 1e-6);
  });

  it('tail-drops datagrams beyond the queue, and never TCP segments', () => {
    const link = new LinkDirection(spec({ queueBytes: 10_000 }), seededRandom(1));
    const verdicts = Array.from({ length: 20 }, () => link.offer(1000 - UDP_OVERHEAD_BYTES, 0));
    expect(verdicts.filter((v) => v.deliver)).to.have.length(10);
    expect(link.counters.droppedQueue).to.equal(10);
    const tcp = Array.from({ length: 20 }, () => link.offer(1460, 0, true));
    expect(tcp.every((v) => v.deliver)).to.equal(true);
    expect(wireBytesOf(1460, true)).to.equal(1500);
    expect(wireBytesOf(3000, true)).to.equal(3000 + 3 * 40);
  });

  it('loses about the configured share, reproducibly for one seed', () => {
    const run = (seed: number) => {
      const link = new LinkDirection(spec({ loss: 0.05, rateBps: 1e9 }), seededRandom(seed));
      return Array.from({ length: 10_000 }, (_, i) => link.offer(100, i).deliver);
    };
    const a = run(7);
    const lost = a.filter((d) => !d).length / a.length;
    expect(lost).to.be.within(0.04, 0.06);
    expect(run(7)).to.deep.equal(a, 'same seed, same losses');
    expect(run(8)).to.not.deep.equal(a);
  });

  it('jitters the delay without reordering packets', () => {
    const link = new LinkDirection(spec({ jitterMs: 40, rateBps: 1e9 }), seededRandom(3));
    const times = Array.from({ length: 2000 }, (_, i) => link.offer(100, i * 2)).map((v) => (v.deliver ? v.deliverAtMs : NaN));
    for (let i = 1; i < times.length; i++) expect(times[i]!).to.be.at.least(times[i - 1]!);
    const delays = times.map((t, i) => t - i * 2);
    expect(Math.min(...delays)).to.be.at.least(10 - 1e-6);
    expect(Math.max(...delays)).to.be.at.most(90 + 1e-6);
    expect(new Set(delays.map((d) => Math.round(d))).size, 'delays vary').to.be.greaterThan(20);
  });

  it('refuses nonsense specs with a clear message', () => {
    expect(() => new LinkDirection(spec({ rateBps: 0 }), seededRandom(1))).to.throw(/rate must be > 0/);
    expect(() => new LinkDirection(spec({ loss: 1 }), seededRandom(1))).to.throw(/loss must be in/);
    expect(() => new LinkDirection(spec({ queueBytes: 100 }), seededRandom(1))).to.throw(/queue must hold/);
    expect(() => linkProfile('dialup')).to.throw(/unknown link profile 'dialup'; one of: commune-3g, island-satellite, edge, flaky/);
  });

  it('names the profiles of issue 15 with their figures', () => {
    expect(Object.keys(LINK_PROFILES)).to.deep.equal(['commune-3g', 'island-satellite', 'edge', 'flaky']);
    const p = (n: string) => LINK_PROFILES[n]!;
    expect([p('commune-3g').up.rateBps, p('commune-3g').down.rateBps, p('commune-3g').up.delayMs * 2, p('commune-3g').up.loss]).to.deep.equal([384_000, 1_000_000, 150, 0.02]);
    expect([p('island-satellite').down.rateBps, p('island-satellite').up.delayMs * 2, p('island-satellite').down.loss]).to.deep.equal([256_000, 650, 0.03]);
    expect(p('island-satellite').down.jitterMs).to.be.greaterThan(0);
    expect([p('edge').down.rateBps, p('edge').up.delayMs * 2, p('edge').down.loss]).to.deep.equal([120_000, 300, 0.05]);
    expect(p('flaky').outages?.durationMs).to.equal(30_000);
  });
});

/** A UDP echo server: the "hub" behind the relay. Records the source ports it saw. */
async function udpEcho(): Promise<{ socket: UdpSocket; port: number; sources: Set<number> }> {
  const socket = createSocket('udp4');
  const sources = new Set<number>();
  socket.on('message', (msg, rinfo) => {
    sources.add(rinfo.port);
    socket.send(msg, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { socket, port: socket.address().port, sources };
}

async function udpClient(): Promise<UdpSocket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return socket;
}

function profile(over: Partial<LinkProfile['up']>): LinkProfile {
  const dir = { rateBps: 200_000, delayMs: 40, jitterMs: 0, loss: 0, queueBytes: 20_000, ...over };
  return { name: 'test', description: 'test link', up: dir, down: dir };
}

describe('link emulator (real sockets on loopback)', function () {
  this.timeout(20_000);
  const closers: (() => void)[] = [];
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });

  it('UDP: RTT at least both delays, throughput limited to the rate, loss and queue drops counted', async () => {
    const echo = await udpEcho();
    const link = new LinkEmulator({ profile: profile({ loss: 0.1 }), seed: 11 });
    const client = await udpClient();
    closers.push(() => link.close(), () => echo.socket.close(), () => client.close());
    const port = await link.relayUdp({ host: '127.0.0.1', port: echo.port });
    const sentAt = new Map<number, number>();
    const rtts: number[] = [];
    const arrivals: number[] = [];
    client.on('message', (msg) => {
      const id = msg.readUInt32BE(0);
      arrivals.push(performance.now());
      rtts.push(performance.now() - sentAt.get(id)!);
    });
    // Phase 1: light load (10 packets/s of 200 B): loss and delay only.
    for (let i = 0; i < 40; i++) {
      const buf = Buffer.alloc(200);
      buf.writeUInt32BE(i, 0);
      sentAt.set(i, performance.now());
      client.send(buf, port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 25));
    }
    await waitUntil(() => link.stats().down.deliveredPackets + link.stats().down.droppedLoss === link.stats().up.deliveredPackets, 5000, 'echoes');
    // Each way loses 10 %: about 81 % come back.
    expect(rtts.length).to.be.within(20, 40);
    expect(Math.min(...rtts)).to.be.at.least(80 - 1, 'RTT is at least the two one-way delays');
    expect(link.stats().up.droppedLoss + link.stats().down.droppedLoss).to.be.greaterThan(0);

    // Phase 2: overload: 2 000 bytes of wire per 10 ms = 1.6 Mb/s into a 200 kb/s link.
    rtts.length = 0;
    arrivals.length = 0;
    const before = link.stats();
    for (let i = 100; i < 300; i++) {
      const buf = Buffer.alloc(972);
      buf.writeUInt32BE(i, 0);
      sentAt.set(i, performance.now());
      client.send(buf, port, '127.0.0.1');
      client.send(buf, port, '127.0.0.1');
      if (i % 2 === 0) await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 2500));
    const after = link.stats();
    expect(after.up.droppedQueue - before.up.droppedQueue, 'tail drops at the queue').to.be.greaterThan(100);
    // Received rate over the busy span: within a wide band around 200 kb/s (the echo comes back through the same rate).
    const span = (arrivals.at(-1)! - arrivals[0]!) / 1000;
    const wireBits = arrivals.length * 1000 * 8;
    expect(wireBits / span).to.be.within(120_000, 260_000);
    expect(after.up.peakQueueBytes).to.be.at.most(20_000);
  });

  it('UDP: one upstream socket per client 5-tuple, capped', async () => {
    const echo = await udpEcho();
    const link = new LinkEmulator({ profile: profile({ delayMs: 1, rateBps: 10_000_000 }), maxUdpMappings: 2 });
    const clients = [await udpClient(), await udpClient(), await udpClient()];
    closers.push(() => link.close(), () => echo.socket.close(), ...clients.map((c) => () => c.close()));
    const port = await link.relayUdp({ host: '127.0.0.1', port: echo.port });
    const got = clients.map(() => 0);
    clients.forEach((c, i) => c.on('message', () => got[i]!++));
    for (const c of clients) c.send(Buffer.from('hello'), port, '127.0.0.1');
    await waitUntil(() => got[0] === 1 && got[1] === 1, 3000, 'two echoes');
    await new Promise((r) => setTimeout(r, 100));
    expect(got[2]).to.equal(0, 'the third client was refused');
    expect(echo.sources.size).to.equal(2);
    expect(link.stats().udpMappings).to.equal(2);
    expect(link.stats().udpMappingsRefused).to.equal(1);
  });

  it('UDP: an outage drops everything, including packets in flight; blockUdp drops everything', async () => {
    const echo = await udpEcho();
    const link = new LinkEmulator({ profile: profile({ delayMs: 100, rateBps: 10_000_000 }) });
    const client = await udpClient();
    closers.push(() => link.close(), () => echo.socket.close(), () => client.close());
    const port = await link.relayUdp({ host: '127.0.0.1', port: echo.port });
    let got = 0;
    client.on('message', () => got++);
    client.send(Buffer.from('in flight'), port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 30));
    link.setOutage(true);
    for (let i = 0; i < 5; i++) client.send(Buffer.from('during'), port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 300));
    expect(got).to.equal(0);
    expect(link.stats().up.droppedOutage).to.equal(6);
    link.setOutage(false);
    client.send(Buffer.from('after'), port, '127.0.0.1');
    await waitUntil(() => got === 1, 3000, 'the echo after the outage');
    link.blockUdp = true;
    client.send(Buffer.from('blocked'), port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 300));
    expect(got).to.equal(1);
    expect(link.stats().udpBlocked).to.equal(1);
  });

  it('TCP: a byte stream arrives whole and in order at the link rate, across an outage', async () => {
    let server: Server | undefined;
    const received: Buffer[] = [];
    const done = new Promise<void>((resolve) => {
      server = createServer((socket) => {
        socket.on('data', (d) => received.push(d));
        socket.on('end', () => resolve());
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const target = server!.address() as { port: number };
    // 256 kb/s with 3 % loss (costs a resend, never a byte).
    const link = new LinkEmulator({ profile: profile({ rateBps: 256_000, loss: 0.03, queueBytes: 16_000 }), seed: 5 });
    closers.push(() => link.close(), () => server!.close());
    const port = await link.relayTcp({ host: '127.0.0.1', port: target.port });
    const payload = Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => (i * 7919) % 251));
    const started = performance.now();
    const client = connect({ host: '127.0.0.1', port });
    client.write(payload);
    client.end();
    setTimeout(() => link.setOutage(true), 500);
    setTimeout(() => link.setOutage(false), 1500);
    await done;
    const elapsed = performance.now() - started;
    const whole = Buffer.concat(received);
    expect(createHash('sha256').update(whole).digest('hex')).to.equal(createHash('sha256').update(payload).digest('hex'));
    // 64 KiB + headers at 256 kb/s is 2.1 s of line time, plus the 1 s outage.
    expect(elapsed).to.be.at.least(2100 + 1000 - 50);
    expect(link.stats().up.deliveredWireBytes).to.be.at.least(payload.length);
    expect(link.stats().up.droppedQueue).to.equal(0);
  });

  it('schedules outages from the profile (or an override)', async () => {
    const link = new LinkEmulator({ profile: profile({}), outages: { firstAtMs: 50, everyMs: 400, durationMs: 150 } });
    closers.push(() => link.close());
    const seen: boolean[] = [];
    link.on('outage', (on) => seen.push(on));
    await waitUntil(() => seen.length >= 4, 3000, 'two outage cycles');
    expect(seen.slice(0, 4)).to.deep.equal([true, false, true, false]);
    expect(() => new LinkEmulator({ profile: profile({}), outages: { firstAtMs: 0, everyMs: 10, durationMs: 20 } })).to.throw(/everyMs > durationMs/);
  });
});

describe('hoichan link-emulator', function () {
  this.timeout(20_000);
  const bin = new URL('../../../bin/hoichan.js', import.meta.url).pathname;

  it('relays through the named profile and prints its ports; refuses unknown profiles and bad targets', async () => {
    const { spawn, spawnSync } = await import('node:child_process');
    const bad = spawnSync(process.execPath, [bin, 'link-emulator', '--profile', 'dialup', '--udp', '127.0.0.1:9'], { encoding: 'utf8', env: { ...process.env, HOICHAN_LOG_LEVEL: 'silent' } });
    expect(bad.status).to.not.equal(0);
    expect(bad.stderr).to.include("unknown link profile 'dialup'");
    const badTarget = spawnSync(process.execPath, [bin, 'link-emulator', '--profile', 'edge', '--tcp', 'localhost'], { encoding: 'utf8', env: { ...process.env, HOICHAN_LOG_LEVEL: 'silent' } });
    expect(badTarget.stderr).to.include("--tcp: 'localhost' is not HOST:PORT");

    const echo = await udpEcho();
    const child = spawn(process.execPath, [bin, 'link-emulator', '--profile', 'edge', '--udp', `127.0.0.1:${echo.port}`], { env: { ...process.env, HOICHAN_LOG_LEVEL: 'silent' } });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d;
          const m = /udp 127\.0\.0\.1:(\d+) -> /.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.once('exit', () => reject(new Error('exited early')));
      });
      const client = await udpClient();
      const rtts: number[] = [];
      client.on('message', (msg) => rtts.push(performance.now() - Number(msg.toString())));
      // 5 % loss each way: of 20 probes, most come back, each after about the 300 ms RTT.
      for (let i = 0; i < 20; i++) client.send(Buffer.from(String(performance.now())), port, '127.0.0.1');
      await waitUntil(() => rtts.length >= 12, 8000, 'echoes through the CLI relay');
      expect(Math.min(...rtts)).to.be.at.least(2 * (150 - 10) - 1, 'two one-way delays less the jitter');
      client.close();
    } finally {
      child.kill('SIGTERM');
      echo.socket.close();
    }
  });
});
