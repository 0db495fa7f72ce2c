// Issue 9 item 2: the agent process dies after journaling an HL7 message and
// before its ACK goes out; the monitor, never ACKed, resends the same bytes to
// the restarted agent. The resend must be ACKed AA and delivered nothing: one
// set of readings at the viewer, no seq twice.

import { Hl7AgentSite } from '../support/hl7AgentSite.js';
import { startTestHub } from '../support/hub.js';
import { frame, numericMessage, TestClient } from '../devices/hl7-support.js';
import { removeDir, tempDir } from './journal-helpers.js';
import { Viewer, expect, freePort, sleep, waitFor } from './uplink-helpers.js';

async function connectWhenListening(port: number, timeoutMs: number): Promise<TestClient> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await TestClient.open(port);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
}

describe('HL7 resend after an agent crash between journal and ACK', function () {
  this.timeout(180_000);
  const cleanup: Array<() => unknown> = [];
  let dir: string;

  beforeEach(async () => {
    dir = await tempDir('hoichan-hl7-resend-');
  });
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
    await removeDir(dir);
  });

  it('the restarted agent ACKs the resend AA and the viewer gets its readings once', async () => {
    const hub = await startTestHub();
    cleanup.push(() => hub.close());
    const viewer = await Viewer.join(hub.url, 'conf-uplink');
    cleanup.push(() => viewer.close());
    const hl7Port = await freePort();
    const site = await Hl7AgentSite.create({ dir, hubUrl: hub.url, siteId: 'site-resend', conferenceId: 'conf-uplink', deviceId: 'mon-resend', hl7Port });
    cleanup.push(() => site.stop());

    // 1. The agent journals the message, then dies before writing the ACK.
    const first = site.start({ HOICHAN_FAULT_HL7_EXIT_AFTER_JOURNAL: '1' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => first.once('exit', (_code, signal) => resolve(signal)));
    const message = frame(numericMessage('RESEND-1', { hr: '71' }));
    const monitor = await connectWhenListening(hl7Port, 60_000);
    cleanup.push(() => monitor.close());
    monitor.write(message);
    expect(await exited).to.equal('SIGKILL');
    await sleep(200);
    expect(monitor.queuedReplies, 'an ACK before the crash').to.equal(0);
    await monitor.close();

    // 2. Restarted (no fault hook): the monitor, never ACKed, resends the same bytes.
    site.start();
    const again = await connectWhenListening(hl7Port, 60_000);
    cleanup.push(() => again.close());
    again.write(message);
    const reply = await again.nextReply(10_000);
    expect(reply.fields('MSA')[1], 'ACK of the resend').to.equal('AA');
    expect(reply.fields('MSA')[2]).to.equal('RESEND-1');

    // 3. A new message after it: once its readings are at the viewer, any re-journaled copy of the
    //    resend (seqs before it) would be there too.
    again.write(frame(numericMessage('AFTER-1', { hr: '72' })));
    expect((await again.nextReply(10_000)).fields('MSA')[1]).to.equal('AA');
    const heartRates = () => (viewer.readings.get('mon-resend') ?? []).filter((r) => r.code === 'MDC_ECG_HEART_RATE').map((r) => (r as { value: number }).value);
    await waitFor(() => heartRates().includes(72), 20_000, () => `the later message at the viewer (have ${JSON.stringify(heartRates())})`);

    expect(viewer.problems, 'viewer problems').to.deep.equal([]);
    const readings = viewer.readings.get('mon-resend')!;
    expect(readings.map((r) => r.seq)).to.deep.equal([1, 2, 3, 4]);
    expect(heartRates()).to.deep.equal([71, 72]);
    expect(readings.filter((r) => r.code === 'MDC_PULS_OXIM_SAT_O2')).to.have.length(2);
  });
});
