import { SiteAgent } from '../../src/agent/SiteAgent.js';
import { loadDriverFactories } from '../../src/devices/registry.js';
const defaultDriverFactories = await loadDriverFactories();
import { deviceMetrics } from '../../src/telemetry/deviceMetrics.js';
import { removeDir, tempDir } from '../agent/journal-helpers.js';
import { SyntheticDriver, Viewer, expect, prefillJournal, siteToken, sleep, testAgentConfig, waitFor } from '../agent/uplink-helpers.js';
import { TestClient, startTestHub } from '../support/hub.js';

// devices.uplinkReadingsPerSecond / uplinkBurst: a site sending faster than the
// hub takes is refused with rate_limited (per site, so reconnecting does not
// refill it); a real agent that is refused resends from its last ack and the
// viewer still gets every reading once, in order.

const CONF = 'conf-uplink';

async function rateLimitedCount(): Promise<number> {
  return (await deviceMetrics.uplinkRefused.get()).values.find((v) => v.labels.code === 'rate_limited')?.value ?? 0;
}

function batch(deviceId: string, from: number, count: number) {
  const t = Date.now();
  const readings = Array.from({ length: count }, (_, i) => ({ deviceId, seq: from + i, kind: 'numeric', code: 'MDC_ECG_HEART_RATE', unit: '/min', t, rt: t, value: 60 }));
  return { deviceId, from, to: from + count - 1, readings };
}

describe('uplink rate limit per site', function () {
  this.timeout(60_000);
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  it('refuses past the limit with rate_limited, stores nothing of it, keeps the connection, and a reconnect does not refill', async () => {
    const hub = await startTestHub({ devices: { uplinkReadingsPerSecond: 1000, uplinkBurst: 1001 } });
    cleanup.push(() => hub.close());
    const connect = async () => {
      const c = await TestClient.connect(`${hub.url}/uplink`, siteToken('site-flood', CONF));
      cleanup.push(() => c.close());
      return c;
    };
    const device = { deviceId: 'flood-1', conferenceId: CONF, type: 'vitals', model: 'test', protocol: 'hl7-mllp', status: 'online', channels: [], acked: 0, lastSeq: 0 };
    const hello = { version: 1, siteId: 'site-flood', clock: { offsetMs: 0, rttMs: 1 }, devices: [device] };
    const stored = () => hub.streams!.stats().find((s) => s.deviceId === 'flood-1')?.stored ?? 0;
    const before = await rateLimitedCount();

    const a = await connect();
    await a.ok('hello', hello); // 1 token
    expect((await a.ok('batch', batch('flood-1', 1, 999))).acked).to.equal(999); // 1000 tokens: the burst is spent
    // Each refused batch below costs 1000 tokens: a second of refill, far more than any test delay.
    const refused = await a.request('batch', batch('flood-1', 1000, 999));
    expect(refused.ok).to.equal(false);
    expect((refused as any).error.code).to.equal('rate_limited');
    expect((refused as any).error.message).to.match(/1000 readings\/s/);
    expect(stored()).to.equal(999);
    expect(await rateLimitedCount()).to.equal(before + 1);

    // A new connection of the same site starts with what is left, not a fresh burst.
    a.close();
    const b = await connect();
    await b.ok('hello', { ...hello, devices: [{ ...device, acked: 999, lastSeq: 1998 }] });
    expect(((await b.request('batch', batch('flood-1', 1000, 999))) as any).error?.code).to.equal('rate_limited');
    expect(stored()).to.equal(999);

    // Slower, it goes through; the connection lived through the refusals.
    await sleep(1100);
    expect((await b.ok('batch', batch('flood-1', 1000, 999))).acked).to.equal(1998);
  });

  it('a real agent over a low limit is slowed on its connection, not lossy: every reading reaches the viewer once, in order, without reconnects', async () => {
    const dir = await tempDir('hoichan-uplink-limit-');
    cleanup.push(() => removeDir(dir));
    // The lowest burst the config takes; with live readings beside the backlog, small batches would spend the
    // bucket before a full catch-up batch fit, if the agent did not pause and shrink its batches.
    const hub = await startTestHub({ devices: { uplinkReadingsPerSecond: 500, uplinkBurst: 1001 } });
    cleanup.push(() => hub.close());
    // 5 minutes offline: 3300 readings, more than three bursts, sent at 6000/s against a hub that takes 500/s.
    const backlog = await prefillJournal(dir, ['lim-ecg'], 5);
    const viewer = await Viewer.join(hub.url, CONF);
    cleanup.push(() => viewer.close());
    const before = await rateLimitedCount();
    const drivers: SyntheticDriver[] = [];
    const factories = {
      ...defaultDriverFactories,
      cms50: (deviceId: string, _settings: unknown, sink: any) => {
        const d = new SyntheticDriver(deviceId, sink, 50);
        drivers.push(d);
        return d;
      },
    };
    const agent = await SiteAgent.start(
      testAgentConfig({
        hubUrl: hub.url,
        journalDir: dir,
        devices: [{ id: 'lim-ecg', type: 'ecg', model: 'synthetic', protocol: 'cms50', settings: { path: '/dev/null' } }],
        hub: { catchUpReadingsPerSecond: 6000 },
      }),
      { factories },
    );
    cleanup.push(() => agent.stop());
    let disconnects = 0;
    agent.uplink.on('disconnected', () => disconnects++);
    await waitFor(() => viewer.lastSeq('lim-ecg') >= backlog, 30_000, () => `the backlog through the limit (viewer at ${viewer.lastSeq('lim-ecg')} of ${backlog})`);
    for (const d of drivers) await d.stop();
    const last = agent.journal.lastSeq('lim-ecg');
    await waitFor(() => viewer.lastSeq('lim-ecg') === last, 10_000, `seq ${last}`);

    expect(await rateLimitedCount(), 'the agent was actually rate-limited').to.be.greaterThan(before);
    // rate_limited keeps the connection: the agent waits and resends on it (reconnecting after each refusal made hundreds).
    expect(disconnects, 'reconnects while rate-limited').to.be.at.most(1);
    expect(viewer.problems).to.deep.equal([]);
    const seqs = viewer.readings.get('lim-ecg')!.map((r) => r.seq);
    expect(seqs).to.deep.equal(Array.from({ length: last }, (_, i) => i + 1));
  });
});
