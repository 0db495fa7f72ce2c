import { expect } from 'chai';
import type { Hub } from '../../src/hub/Hub.js';
import { Viewer, siteToken, waitFor } from '../agent/uplink-helpers.js';
import { TestClient, startTestHub } from '../support/hub.js';

// devices.lateAfterMs and devices.degradedLagMs (config) decide what a viewer
// is told: a reading's late mark and the device's uplink-lag status.

const CONF = 'conf-thresholds';
const DEVICE = 'mon-thresholds';

function numeric(seq: number, ageMs: number) {
  const rt = Date.now() - ageMs;
  return { deviceId: DEVICE, seq, kind: 'numeric', code: 'MDC_ECG_HEART_RATE', unit: '/min', t: rt, rt, value: 60 + seq };
}

describe('device stream thresholds from the hub config', function () {
  this.timeout(30_000);
  let hub: Hub;
  let viewer: Viewer;
  let agent: TestClient;

  before(async () => {
    hub = await startTestHub({ devices: { lateAfterMs: 1000, degradedLagMs: 3000 } });
    viewer = await Viewer.join(hub.url, CONF);
    agent = await TestClient.connect(`${hub.url}/uplink`, siteToken('site-thresholds', CONF));
    await agent.ok('hello', {
      version: 1,
      siteId: 'site-thresholds',
      clock: { offsetMs: 0, rttMs: 1 },
      devices: [{ deviceId: DEVICE, conferenceId: CONF, type: 'vitals', model: 'test', protocol: 'hl7-mllp', status: 'online', channels: [], acked: 0, lastSeq: 0 }],
    });
  });
  after(async () => {
    viewer?.close();
    agent?.close();
    await hub?.close();
  });

  const send = (seq: number, ageMs: number) => agent.ok('batch', { deviceId: DEVICE, from: seq, to: seq, readings: [numeric(seq, ageMs)] });
  const received = (seq: number) => viewer.readings.get(DEVICE)?.find((r) => r.seq === seq);
  const lastStatus = () => [...viewer.statuses].reverse().find((s) => s.deviceId === DEVICE);

  it('marks late only past devices.lateAfterMs, and degrades past devices.degradedLagMs until lag falls under half', async () => {
    await send(1, 0);
    await send(2, 1500); // late at 1000 ms; on time with the 5000 ms default
    await waitFor(() => received(2) !== undefined, 5000, 'seq 2 at the viewer');
    expect(received(1)!.late).to.equal(undefined);
    expect(received(2)!.late).to.equal(true);
    expect(lastStatus()?.status ?? 'online').to.equal('online');

    await send(3, 4000); // past 3000 ms of uplink lag: degraded
    await waitFor(() => lastStatus()?.status === 'degraded', 5000, 'degraded status');
    expect(lastStatus()!.reason).to.match(/uplink lag/);

    await send(4, 2000); // above half of 3000: still degraded (no flapping)
    await waitFor(() => received(4) !== undefined, 5000, 'seq 4 at the viewer');
    expect(lastStatus()!.status).to.equal('degraded');

    await send(5, 0);
    await waitFor(() => lastStatus()?.status === 'online', 5000, 'online again');
  });
});
