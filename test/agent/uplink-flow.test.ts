// Site agent -> hub -> viewer over real sockets, with a fast synthetic device:
// every seq once and in order, join lists the devices, a late joiner gets the
// last 60 s of waveforms and the latest numerics, status changes reach peers.

import { register } from 'prom-client';
import { SiteAgent } from '../../src/agent/SiteAgent.js';
import { loadDriverFactories } from '../../src/devices/registry.js';
const defaultDriverFactories = await loadDriverFactories();
import type { Hub } from '../../src/hub/Hub.js';
import { removeDir, tempDir } from './journal-helpers.js';
import { startTestHub } from '../support/hub.js';
import { SyntheticDriver, Viewer, expect, sleep, testAgentConfig, waitFor } from './uplink-helpers.js';

describe('uplink: agent -> hub -> viewer', function () {
  this.timeout(60_000);
  let hub: Hub;
  let dir: string;
  const cleanup: Array<() => unknown> = [];

  beforeEach(async () => {
    hub = await startTestHub();
    dir = await tempDir('hoichan-uplink-');
  });
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
    await hub.close();
    await removeDir(dir);
  });

  function synthetic(periodMs = 10) {
    const drivers: SyntheticDriver[] = [];
    const factories = {
      ...defaultDriverFactories,
      cms50: (deviceId: string, _settings: unknown, sink: any) => {
        const d = new SyntheticDriver(deviceId, sink, periodMs);
        drivers.push(d);
        return d;
      },
    };
    return { factories, drivers };
  }

  it('delivers every seq once, in order, with the values the device produced', async () => {
    const viewer = await Viewer.join(hub.url, 'conf-uplink');
    cleanup.push(() => viewer.close());
    const { factories } = synthetic(10);
    const config = testAgentConfig({ hubUrl: hub.url, journalDir: dir, devices: [{ id: 'syn-1', type: 'ecg', model: 'synthetic', protocol: 'cms50', settings: { path: '/dev/null' } }] });
    const agent = await SiteAgent.start(config, { factories });
    cleanup.push(() => agent.stop());
    await waitFor(() => viewer.count('syn-1') >= 300, 20_000, () => `300 readings (have ${viewer.count('syn-1')})`);
    await agent.registry.stop();
    const last = agent.journal.lastSeq('syn-1');
    await waitFor(() => viewer.lastSeq('syn-1') === last, 10_000, `seq ${last} at the viewer`);
    expect(viewer.problems).to.deep.equal([]);
    const readings = viewer.readings.get('syn-1')!;
    expect(readings.map((r) => r.seq)).to.deep.equal(Array.from({ length: last }, (_, i) => i + 1));
    // Values: the synthetic device's samples are the running sample index mod 1000.
    const samples = readings.filter((r) => r.kind === 'waveform').flatMap((r: any) => r.samples);
    expect(samples).to.deep.equal(Array.from({ length: samples.length }, (_, k) => k % 1000));
    expect(readings.some((r) => r.late)).to.equal(false);
    await waitFor(() => agent.journal.depth().pending === 0, 5000, 'journal fully acknowledged');
    const stats = hub.streams!.stats();
    expect(stats[0]).to.include({ deviceId: 'syn-1', siteId: 'site-test', stored: last, duplicatesDropped: 0 });
    // The driver was stopped above: its offline status reaches the hub too (when is a race with the checks above).
    await waitFor(() => hub.streams!.stats()[0]!.status === 'offline', 10_000, 'the stopped device offline at the hub');
    expect(stats[0]!.readingsPerSecond).to.be.greaterThan(0);
    // Device-flow metrics on the default prom-client registry.
    const text = await register.metrics();
    expect(text).to.match(/hoichan_device_readings_received_total\{protocol="cms50",device_type="ecg"\} \d+/);
    expect(text).to.match(/hoichan_device_readings_delivered_total\{protocol="cms50",device_type="ecg"\} \d+/);
    expect(text).to.match(/hoichan_device_uplink_lag_seconds_count \d+/);
    expect(text).to.match(/hoichan_device_fanout_seconds_count \d+/);
    expect(text).to.match(/hoichan_agent_journal_depth\{site="site-test"\} \d+/);
  });

  it('join lists the devices; a late joiner gets recent waveforms and latest numerics as replay; status reaches peers', async () => {
    const { factories } = synthetic(20);
    const config = testAgentConfig({ hubUrl: hub.url, journalDir: dir, devices: [{ id: 'syn-2', type: 'ecg', model: 'synthetic', protocol: 'cms50', settings: { path: '/dev/null' } }] });
    const agent = await SiteAgent.start(config, { factories });
    cleanup.push(() => agent.stop());
    const first = await Viewer.join(hub.url, 'conf-uplink');
    cleanup.push(() => first.close());
    await waitFor(() => first.count('syn-2') >= 50, 10_000, '50 readings');
    const late = await Viewer.join(hub.url, 'conf-uplink', { resume: false });
    cleanup.push(() => late.close());
    expect(late.devicesAtJoin.map((d: any) => d.deviceId)).to.deep.equal(['syn-2']);
    expect(late.devicesAtJoin[0]).to.include({ status: 'online', conferenceId: 'conf-uplink', protocol: 'cms50' });
    await waitFor(() => late.count('syn-2') > 0, 5000, 'replay');
    await sleep(300);
    expect(late.problems).to.deep.equal([]);
    const got = late.readings.get('syn-2')!;
    expect(got.some((r) => r.kind === 'numeric')).to.equal(true);
    // Everything the late joiner has, the first viewer has with the same content.
    const bySeq = new Map(first.readings.get('syn-2')!.map((r) => [r.seq, r]));
    for (const r of got) expect(r).to.deep.equal(bySeq.get(r.seq));

    await agent.registry.stop();
    await waitFor(() => first.statuses.some((s) => s.deviceId === 'syn-2' && s.status === 'offline'), 10_000, 'offline status');
  });
});
