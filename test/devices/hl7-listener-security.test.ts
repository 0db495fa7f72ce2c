// The HL7 listener's bounds over real TCP on loopback: sender allowlist (a
// client binds 127.0.0.2 or 127.0.0.3 as its source; Linux routes all of 127/8
// to lo), the connection cap, and the idle timeout beside the stale status.

import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createHl7Driver, type Hl7Driver } from '../../src/devices/hl7/index.js';
import { hl7DeviceConfigSchema, type Hl7DeviceConfig } from '../../src/devices/hl7/config.js';
import { Hl7Listener, isLoopbackHost } from '../../src/devices/hl7/server.js';
import { RecordingSink, expect, frame, numericMessage, sleep, waitFor } from './hl7-support.js';

interface RawClient {
  socket: Socket;
  data: Buffer[];
  closed: Promise<void>;
}

/** Connects from `localAddress`; resolves once connected (a refused one then closes). */
function open(port: number, localAddress = '127.0.0.1', host = '127.0.0.1'): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, localAddress }, () => {
      socket.off('error', reject);
      socket.on('error', () => {});
      resolve(client);
    });
    const data: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => data.push(chunk));
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    const client: RawClient = { socket, data, closed };
    socket.once('error', reject);
  });
}

function replyText(client: RawClient): string {
  return Buffer.concat(client.data).toString('utf8');
}

async function ackOf(client: RawClient, controlId: string): Promise<void> {
  await waitFor(() => replyText(client).includes(`MSA|AA|${controlId}`), 3000, `AA for ${controlId}`);
}

describe('hl7 listener security (real TCP on loopback)', function () {
  this.timeout(20_000);
  let driver: Hl7Driver | undefined;
  let sink: RecordingSink;
  const clients: RawClient[] = [];

  async function startDriver(settings: Hl7DeviceConfig): Promise<number> {
    sink = new RecordingSink();
    driver = createHl7Driver([{ deviceId: 'bed1', settings: { port: 0, ...settings } }], sink);
    await driver.start();
    return driver.serverAddress('bed1')!.port;
  }

  async function client(port: number, localAddress?: string, host?: string): Promise<RawClient> {
    const c = await open(port, localAddress, host);
    clients.push(c);
    return c;
  }

  afterEach(async () => {
    for (const c of clients.splice(0)) c.socket.destroy();
    await driver?.stop();
    driver = undefined;
  });

  it('takes messages from an allowed CIDR block and closes others before reading a byte', async () => {
    const port = await startDriver({ allowedSenders: ['127.0.0.2/31'] });
    const allowed = await client(port, '127.0.0.2');
    allowed.socket.write(frame(numericMessage('A1')));
    await ackOf(allowed, 'A1');
    const alsoAllowed = await client(port, '127.0.0.3');
    alsoAllowed.socket.write(frame(numericMessage('A2')));
    await ackOf(alsoAllowed, 'A2');

    const stranger = await client(port, '127.0.0.1');
    stranger.socket.write(frame(numericMessage('X1', { hr: '180' })));
    await stranger.closed;
    expect(stranger.data).to.have.length(0);
    expect(driver!.listenerCounters('bed1')).to.deep.equal({ refusedSender: 1, refusedOverCap: 0, idleTimeouts: 0 });
    expect(sink.readings.map((r) => (r.kind === 'numeric' ? r.value : undefined))).to.deep.equal([97, 70, 97, 70]);
    expect(driver!.counters.framesDecoded).to.equal(2);
  });

  it('matches single addresses and IPv6 (::1) when the listener is dual-stack loopback', async function () {
    const port = await startDriver({ host: '::1', allowedSenders: ['::1'] });
    const v6 = await client(port, '::1', '::1');
    v6.socket.write(frame(numericMessage('V6')));
    await ackOf(v6, 'V6');
    const port4 = await (async () => {
      await driver!.stop();
      return startDriver({ allowedSenders: ['127.0.0.2'] });
    })();
    const refused = await client(port4, '127.0.0.3');
    await refused.closed;
    expect(driver!.listenerCounters('bed1')!.refusedSender).to.equal(1);
  });

  it('refuses connections over maxConnections and counts them; a freed slot is usable again', async () => {
    const port = await startDriver({ maxConnections: 2 });
    const a = await client(port);
    const b = await client(port);
    a.socket.write(frame(numericMessage('C1')));
    b.socket.write(frame(numericMessage('C2')));
    await ackOf(a, 'C1');
    await ackOf(b, 'C2');
    const excess = await client(port);
    excess.socket.write(frame(numericMessage('C3')));
    await excess.closed;
    expect(excess.data).to.have.length(0);
    expect(driver!.listenerCounters('bed1')).to.deep.equal({ refusedSender: 0, refusedOverCap: 1, idleTimeouts: 0 });
    expect(driver!.listenerConnections('bed1')).to.equal(2);

    a.socket.destroy();
    await a.closed;
    await waitFor(() => driver!.listenerConnections('bed1') === 1, 3000, 'slot freed');
    const next = await client(port);
    next.socket.write(frame(numericMessage('C4')));
    await ackOf(next, 'C4');
  });

  it('reports a silent sender stale first, then closes it at idleTimeoutMs with that reason', async () => {
    const port = await startDriver({ staleAfterMs: 300, idleTimeoutMs: 1200 });
    const statuses: string[] = [];
    driver!.on('status', (_id, s) => statuses.push(`${s.status}${s.reason ? `: ${s.reason}` : ''}`));
    const c = await client(port);
    c.socket.write(frame(numericMessage('I1')));
    await ackOf(c, 'I1');
    await c.closed;
    expect(driver!.listenerCounters('bed1')!.idleTimeouts).to.equal(1);
    await waitFor(() => statuses.length === 3, 3000, 'the disconnect status');
    expect(statuses).to.deep.equal(['online', 'offline: no message for 0 s', 'offline: sender idle for 1 s, disconnected']);
    // A monitor's gateway reconnects and carries on.
    const again = await client(port);
    again.socket.write(frame(numericMessage('I2')));
    await ackOf(again, 'I2');
    expect(driver!.statusOf('bed1')).to.deep.equal({ status: 'online' });
  });

  it('does not cut a sender while its frame waits on the sink, however long', async () => {
    const port = await startDriver({ staleAfterMs: 300, idleTimeoutMs: 1000 });
    let release!: () => void;
    sink.hold = new Promise((resolve) => (release = resolve));
    const c = await client(port);
    c.socket.write(frame(numericMessage('H1')));
    await waitFor(() => sink.calls === 1, 3000, 'sink call');
    await sleep(2500);
    expect(c.socket.destroyed).to.equal(false);
    expect(driver!.listenerCounters('bed1')!.idleTimeouts).to.equal(0);
    release();
    await ackOf(c, 'H1');
    // Once answered, silence counts again.
    await c.closed;
    expect(driver!.listenerCounters('bed1')!.idleTimeouts).to.equal(1);
  });

  it('logs a refused sender by address only, once per minute per address', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
        done();
      },
    });
    const log = pino({ level: 'info' }, stream);
    const listener = new Hl7Listener(
      { host: '127.0.0.1', port: 0, maxFrameBytes: 1 << 20, idleTimeoutMs: 60_000, maxConnections: 4, allowedSenders: ['10.0.5.0/24', 'fd00::/8'] },
      { onFrame: async () => undefined, onDiscarded: () => {}, onClose: () => {} },
      log,
    );
    const { port } = await listener.listen();
    try {
      for (let i = 0; i < 3; i++) await (await client(port, '127.0.0.2')).closed;
      expect(listener.counters.refusedSender).to.equal(3);
      await waitFor(() => lines.some((l) => l.msg === 'hl7 sender not in allowedSenders: connection closed'), 2000, 'log line');
      const refusals = lines.filter((l) => l.msg === 'hl7 sender not in allowedSenders: connection closed');
      expect(refusals).to.have.length(1);
      expect(refusals[0]!.address).to.equal('127.0.0.2');
      expect(JSON.stringify(refusals[0])).not.to.match(/127\.0\.0\.2:\d/);
      expect(lines.some((l) => String(l.msg).includes('non-loopback'))).to.equal(false);
    } finally {
      await listener.close();
    }
  });

  it('validates the settings and names the field', () => {
    const bad = (settings: Record<string, unknown>): string => {
      const result = hl7DeviceConfigSchema.safeParse(settings);
      expect(result.success).to.equal(false);
      return result.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    };
    expect(bad({ allowedSenders: ['10.0.5.0/33'] })).to.match(/^allowedSenders\.0: expected an IPv4\/IPv6 address or CIDR block/);
    expect(bad({ allowedSenders: ['monitor.ward5.local'] })).to.match(/^allowedSenders\.0:/);
    expect(bad({ allowedSenders: ['fd00::/129'] })).to.match(/^allowedSenders\.0:/);
    expect(bad({ allowedSenders: ['10.0.5.1/24/1'] })).to.match(/^allowedSenders\.0:/);
    expect(bad({ staleAfterMs: 10_000, idleTimeoutMs: 5000 })).to.match(/^idleTimeoutMs: must exceed staleAfterMs \(10000\)/);
    expect(bad({ maxConnections: 0 })).to.match(/^maxConnections:/);
    const ok = hl7DeviceConfigSchema.parse({ allowedSenders: ['10.0.5.21', '10.0.5.0/24', 'fd00::/8', '::1'] });
    expect(ok).to.include({ idleTimeoutMs: 300_000, maxConnections: 16 });
    // Client mode has no listener: its idle timeout is not checked against staleAfterMs.
    expect(hl7DeviceConfigSchema.safeParse({ mode: 'client', staleAfterMs: 600_000 }).success).to.equal(true);
  });

  it('refuses devices on one listener that disagree on its bounds', () => {
    const sinkless = new RecordingSink();
    expect(() =>
      createHl7Driver(
        [
          { deviceId: 'a', settings: { port: 4700, allowedSenders: ['10.0.5.0/24'] } },
          { deviceId: 'b', settings: { port: 4700, allowedSenders: [] } },
        ],
        sinkless,
      ),
    ).to.throw('devices on HL7 listener 127.0.0.1:4700 disagree on allowedSenders');
    expect(() =>
      createHl7Driver(
        [
          { deviceId: 'a', settings: { port: 4700, maxConnections: 4 } },
          { deviceId: 'b', settings: { port: 4700 } },
        ],
        sinkless,
      ),
    ).to.throw('disagree on maxConnections');
  });

  it('tells loopback hosts from the rest (the no-allowlist warning)', () => {
    for (const host of ['127.0.0.1', '127.0.0.2', '::1', 'localhost', '::ffff:127.0.0.1']) expect(isLoopbackHost(host), host).to.equal(true);
    for (const host of ['0.0.0.0', '::', '10.0.5.1', 'monitor.local', '128.0.0.1']) expect(isLoopbackHost(host), host).to.equal(false);
  });
});
