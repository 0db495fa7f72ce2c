// Faults between the devices and the viewer, each with zero readings lost or
// duplicated at the viewer: the uplink cut for 30 s, kill -9 of the agent
// mid-stream, a journal filled to its cap, and a hub restart while the agent
// holds 10 minutes of backlog.

import { SiteAgent } from '../../src/agent/SiteAgent.js';
import { mindrayHl7Simulator } from '../../src/sim/hl7/command.js';
import { loadDriverFactories } from '../../src/devices/registry.js';
const defaultDriverFactories = await loadDriverFactories();
import type { SentValues } from '../../src/sim/simulator.js';
import type { Hub } from '../../src/hub/Hub.js';
import { Hl7AgentSite } from '../support/hl7AgentSite.js';
import { startTestHub } from '../support/hub.js';
import { removeDir, tempDir } from './journal-helpers.js';
import { SyntheticDriver, TcpProxy, Viewer, expect, freePort, prefillJournal, sleep, testAgentConfig, waitFor } from './uplink-helpers.js';

function syntheticFactories(periodMs: number, drivers: SyntheticDriver[]) {
  return {
    ...defaultDriverFactories,
    cms50: (deviceId: string, _settings: unknown, sink: any) => {
      const d = new SyntheticDriver(deviceId, sink, periodMs);
      drivers.push(d);
      return d;
    },
  };
}

const synthDevice = (id: string) => ({ id, type: 'ecg' as const, model: 'synthetic', protocol: 'cms50' as const, settings: { path: '/dev/null' } });

/** Every seq from 1 to last accounted for once, as a reading or inside an announced gap. */
function expectComplete(viewer: Viewer, deviceId: string, last: number): void {
  expect(viewer.problems, 'viewer problems').to.deep.equal([]);
  const seqs = new Set<number>();
  for (const r of viewer.readings.get(deviceId) ?? []) {
    expect(seqs.has(r.seq), `seq ${r.seq} twice`).to.equal(false);
    seqs.add(r.seq);
  }
  for (const g of viewer.gaps.get(deviceId) ?? []) for (let s = g.from; s <= g.to; s++) seqs.add(s);
  expect(seqs.size, `${deviceId} seqs accounted for`).to.equal(last);
  expect(viewer.lastSeq(deviceId)).to.equal(last);
}

describe('uplink faults: nothing lost, nothing duplicated at the viewer', function () {
  this.timeout(120_000);
  const cleanup: Array<() => unknown> = [];
  let dir: string;

  beforeEach(async () => {
    dir = await tempDir('hoichan-uplink-fault-');
  });
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
    await removeDir(dir);
  });

  it('the uplink cut for 30 s: backlog arrives late, in order, once; the device shows offline then online', async () => {
    const hub = await startTestHub();
    cleanup.push(() => hub.close());
    const proxy = await TcpProxy.start(hub.port);
    cleanup.push(() => proxy.close());
    const viewer = await Viewer.join(hub.url, 'conf-uplink');
    cleanup.push(() => viewer.close());
    const drivers: SyntheticDriver[] = [];
    const agent = await SiteAgent.start(testAgentConfig({ hubUrl: proxy.url, journalDir: dir, devices: [synthDevice('cut-1')] }), { factories: syntheticFactories(20, drivers) });
    cleanup.push(() => agent.stop());
    await waitFor(() => viewer.count('cut-1') > 50, 10_000, 'readings before the cut');

    await proxy.cut();
    const cutAt = viewer.lastSeq('cut-1');
    await waitFor(() => viewer.statuses.some((s) => s.deviceId === 'cut-1' && s.status === 'offline' && /agent disconnected/.test(s.reason)), 5000, 'offline status');
    await sleep(30_000);
    const lastDuringCut = agent.journal.lastSeq('cut-1');
    expect(viewer.lastSeq('cut-1')).to.be.at.most(cutAt + 10 * 4); // nothing flowed meanwhile (bar the batches in flight at the cut)
    const restoredAt = Date.now();
    await proxy.restore();
    await waitFor(() => viewer.lastSeq('cut-1') >= lastDuringCut, 20_000, 'the backlog');
    await drivers[0]!.stop();
    const last = agent.journal.lastSeq('cut-1');
    await waitFor(() => viewer.lastSeq('cut-1') === last, 10_000, 'the last reading');
    expectComplete(viewer, 'cut-1', last);
    const readings = viewer.readings.get('cut-1')!;
    // Readings held during the cut arrive marked late, with their device time kept.
    // (Those from the last seconds of the cut reach the hub under the 5 s late threshold: on time.)
    const held = readings.filter((r) => r.seq > cutAt + 40 && r.rt < restoredAt - 6000);
    expect(held.length).to.be.greaterThan(1000);
    expect(held.every((r) => r.late === true)).to.equal(true);
    expect(readings.filter((r) => r.seq < cutAt - 10).some((r) => r.late)).to.equal(false);
    const after = viewer.statuses.filter((s) => s.deviceId === 'cut-1').map((s) => s.status);
    expect(after.lastIndexOf('online')).to.be.greaterThan(after.indexOf('offline'));
    await waitFor(() => agent.journal.depth().pending === 0, 5000, 'journal acknowledged');
  });

  it('kill -9 of the agent mid-stream, then a restart: every seq once; every value the monitor had ACKed arrives', async () => {
    const hub = await startTestHub();
    cleanup.push(() => hub.close());
    const viewer = await Viewer.join(hub.url, 'conf-uplink');
    cleanup.push(() => viewer.close());
    const hl7Port = await freePort();
    const site = await Hl7AgentSite.create({ dir, hubUrl: hub.url, siteId: 'site-kill', conferenceId: 'conf-uplink', deviceId: 'mon-kill', hl7Port });
    cleanup.push(() => site.stop());
    site.start();
    const sim = await mindrayHl7Simulator.start(['--port', String(hl7Port), '--interval-ms', '100', '--ack-timeout-ms', '1000', '--seed', '5', '--nibp-every-ms', '1000']);
    cleanup.push(() => sim.stop());
    const sent: SentValues[] = [];
    sim.on('sent', (v) => sent.push(v));
    sim.on('error', () => undefined);

    await waitFor(() => viewer.count('mon-kill') > 100, 20_000, 'readings before the kill');
    const killed = site.child!;
    killed.kill('SIGKILL');
    await new Promise((resolve) => killed.once('exit', resolve));
    const atKill = viewer.lastSeq('mon-kill');
    await sleep(1500);
    site.start();
    await waitFor(() => viewer.lastSeq('mon-kill') > atKill + 100, 20_000, 'readings after the restart');
    await sim.stop();
    // Drained when the hub's watermark stops moving and the viewer has it.
    let stored = -1;
    await waitFor(
      () => {
        const now = hub.streams!.stats().find((s) => s.deviceId === 'mon-kill')!.stored;
        const settled = now === stored && viewer.lastSeq('mon-kill') === now;
        stored = now;
        return settled;
      },
      15_000,
      'the stream to settle',
    );
    expectComplete(viewer, 'mon-kill', stored);
    const byKey = new Map((viewer.readings.get('mon-kill') ?? []).map((r) => [`${r.kind}|${r.code}|${r.t}`, r]));
    expect(sent.length).to.be.greaterThan(30);
    for (const s of sent) {
      for (const [code, value] of Object.entries(s.numerics ?? {})) expect(byKey.get(`numeric|${code}|${s.t}`), `${code}@${s.t}`).to.include({ value });
    }
  });

  it('the journal filled to its cap while the hub is unreachable: numerics all arrive, dropped waveforms arrive as gaps', async () => {
    const hub = await startTestHub();
    cleanup.push(() => hub.close());
    const proxy = await TcpProxy.start(hub.port);
    cleanup.push(() => proxy.close());
    await proxy.cut();
    const viewer = await Viewer.join(hub.url, 'conf-uplink');
    cleanup.push(() => viewer.close());
    const drivers: SyntheticDriver[] = [];
    const agent = await SiteAgent.start(
      testAgentConfig({ hubUrl: proxy.url, journalDir: dir, devices: [synthDevice('cap-1')], journal: { segmentBytes: 16 * 1024, maxBytes: 64 * 1024 } }),
      { factories: syntheticFactories(5, drivers) },
    );
    cleanup.push(() => agent.stop());
    await waitFor(() => agent.journal.stats().droppedWaveforms > 500, 20_000, 'the cap to drop waveforms');
    await proxy.restore();
    await sleep(1000);
    await drivers[0]!.stop();
    const last = agent.journal.lastSeq('cap-1');
    await waitFor(() => viewer.lastSeq('cap-1') === last, 15_000, () => `seq ${last} (viewer at ${viewer.lastSeq('cap-1')})`);
    expectComplete(viewer, 'cap-1', last);
    const readings = viewer.readings.get('cap-1')!;
    const numerics = readings.filter((r) => r.kind === 'numeric');
    expect(numerics.length, 'numerics').to.equal(drivers[0]!.delivered.numerics);
    expect(drivers[0]!.refused).to.equal(0);
    const gaps = viewer.gaps.get('cap-1') ?? [];
    const gapSeqs = gaps.reduce((n, g) => n + g.to - g.from + 1, 0);
    expect(gaps.every((g) => g.reason === 'journal-cap')).to.equal(true);
    expect(gapSeqs).to.equal(agent.journal.stats().droppedWaveforms);
    expect(readings.length + gapSeqs).to.equal(last);
  });

  it('a hub restart while the agent holds 10 minutes of backlog', async () => {
    const port = await freePort();
    let hub: Hub = await startTestHub({ http: { port } });
    cleanup.push(() => hub.close());
    // 10 minutes offline, written straight into the journal (device times spread over the last 10 minutes).
    const backlog = await prefillJournal(dir, ['bl-ecg', 'bl-ecg2'], 10);
    expect(backlog).to.equal(2 * 600 * 11);
    const viewer = await Viewer.join(hub.url, 'conf-uplink');
    cleanup.push(() => viewer.close());
    const drivers: SyntheticDriver[] = [];
    const agent = await SiteAgent.start(
      testAgentConfig({ hubUrl: hub.url, journalDir: dir, devices: [synthDevice('bl-ecg'), synthDevice('bl-ecg2')], hub: { catchUpReadingsPerSecond: 3000 } }),
      { factories: syntheticFactories(50, drivers) },
    );
    cleanup.push(() => agent.stop());
    await waitFor(() => viewer.lastSeq('bl-ecg') > 2000, 20_000, 'part of the backlog');
    const before = viewer.lastSeq('bl-ecg');
    const old = hub;
    await old.close();
    hub = await startTestHub({ http: { port } });
    cleanup.push(() => hub.close());
    await waitFor(() => viewer.joins >= 2, 10_000, 'the viewer back on the new hub');
    await waitFor(() => viewer.lastSeq('bl-ecg') >= 6600 && viewer.lastSeq('bl-ecg2') >= 6600, 40_000, () => `the whole backlog (viewer at ${viewer.lastSeq('bl-ecg')}, ${viewer.lastSeq('bl-ecg2')})`);
    expect(before).to.be.lessThan(6600 / 2);
    for (const d of drivers) await d.stop();
    for (const id of ['bl-ecg', 'bl-ecg2']) {
      const last = agent.journal.lastSeq(id);
      await waitFor(() => viewer.lastSeq(id) === last, 10_000, `${id} seq ${last}`);
      expectComplete(viewer, id, last);
      const readings = viewer.readings.get(id)!;
      expect(readings.length).to.equal(last);
      // The backlog's device times are kept and it is marked late.
      const backlogReadings = readings.filter((r) => r.seq <= 6600);
      expect(backlogReadings.every((r) => r.late === true)).to.equal(true);
      expect(backlogReadings[0]!.t).to.be.below(Date.now() - 9 * 60_000);
    }
  });
});
