// The mindray-hl7 simulator against the driver over real TCP: what the
// simulator says it sent (after ACK AA) is exactly what the sink received,
// through faults, listener restarts, and (PDS client mode) monitor restarts.

import type { SentValues } from '../../src/sim/simulator.js';
import { createHl7Driver, type Hl7Driver } from '../../src/devices/hl7/index.js';
import { mindrayHl7Simulator, type MindrayHl7SimulatorHandle } from '../../src/sim/hl7/command.js';
import type { DeviceReadingBody } from '../../src/devices/driver.js';
import type { AlarmBody } from '../../src/devices/reading.js';
import { RecordingSink, expect, sleep, waitFor } from './hl7-support.js';

/** Every value the simulator reported as acknowledged must be in the sink, with the same device time. */
function expectDelivered(sent: SentValues[], readings: DeviceReadingBody[]): void {
  const byKey = new Map<string, DeviceReadingBody>();
  for (const r of readings) byKey.set(`${r.kind}|${r.code}|${r.t}`, r);
  for (const s of sent) {
    for (const [code, value] of Object.entries(s.numerics ?? {})) {
      const r = byKey.get(`numeric|${code}|${s.t}`);
      expect(r, `${code} at ${s.t}`).to.not.equal(undefined);
      expect(r).to.include({ value });
    }
    for (const [code, samples] of Object.entries(s.waveformSamples ?? {})) {
      const r = byKey.get(`waveform|${code}|${s.t}`) as { samples: unknown } | undefined;
      expect(r, `${code} at ${s.t}`).to.not.equal(undefined);
      expect(r!.samples).to.deep.equal(samples);
    }
    if (s.alarm) {
      const r = byKey.get(`alarm|${s.alarm.code}|${s.t}`);
      expect(r, `alarm at ${s.t}`).to.include({ priority: s.alarm.priority, active: s.alarm.active });
      const { phase, text, alarmId } = s.alarm;
      expect(r).to.include({ ...(phase !== undefined && { phase }), ...(text !== undefined && { text }), ...(alarmId !== undefined && { alarmId }) });
    }
  }
}

describe('hl7 simulator -> driver over TCP', function () {
  this.timeout(30_000);
  const running: Array<{ stop(): Promise<void> }> = [];
  afterEach(async () => {
    for (const r of running.splice(0).reverse()) await r.stop();
  });

  async function serverDriver(port = 0, sink = new RecordingSink()): Promise<{ driver: Hl7Driver; sink: RecordingSink; port: number }> {
    const driver = createHl7Driver([{ deviceId: 'mon', settings: { port, equipmentId: '00A037FFFE0000AA' } }], sink);
    await driver.start();
    running.push(driver);
    return { driver, sink, port: driver.serverAddress('mon')!.port };
  }

  async function simulator(argv: string[]): Promise<{ sim: MindrayHl7SimulatorHandle; sent: SentValues[] }> {
    const sim = await mindrayHl7Simulator.start(argv);
    running.push(sim);
    const sent: SentValues[] = [];
    sim.on('sent', (v) => sent.push(v));
    sim.on('error', () => {});
    return { sim, sent };
  }

  it('delivers exactly the values the simulator sent, through split, corrupt and burst faults', async () => {
    const { driver, sink, port } = await serverDriver();
    const { sim, sent } = await simulator([
      '--port', String(port), '--equipment-id', '00A037FFFE0000AA', '--interval-ms', '100', '--ecg-rate', '500',
      '--nibp-every-ms', '500', '--alarm-rate', '0.3', '--seed', '7', '--split', '--corrupt-rate', '0.3', '--burst', '3',
    ]);
    await waitFor(() => sent.length >= 40, 15_000, '40 acknowledged messages');
    await sim.stop();
    expect(sent.some((s) => s.alarm)).to.equal(true);
    expect(sent.some((s) => s.numerics?.MDC_PRESS_CUFF_SYS !== undefined)).to.equal(true);
    const ecg = sent.flatMap((s) => s.waveformSamples?.MDC_ECG_ELEC_POTL_II ?? []);
    expect(Math.max(...ecg)).to.be.within(0.6, 1.6); // an R wave in mV
    expectDelivered(sent, sink.readings);
    // Numerics are plausible.
    for (const s of sent.filter((x) => x.numerics)) {
      // 95-99 %, or 85-89 % during a desaturation (SpO2-low alarm).
      expect(s.numerics!.MDC_PULS_OXIM_SAT_O2).to.be.within(85, 99);
      expect(s.numerics!.MDC_ECG_HEART_RATE).to.be.within(60, 90);
    }
    expect(driver.counters.bytesDiscarded).to.be.above(0);
    expect(driver.counters.framesRejected).to.equal(0);
  });

  it('sends an SpO2-low lifecycle (start, continue, end) that the driver pairs by alarmId and clears', async () => {
    const { sink, port } = await serverDriver();
    const { sim, sent } = await simulator([
      '--port', String(port), '--equipment-id', '00A037FFFE0000AA', '--interval-ms', '20', '--alarm-rate', '0.15', '--seed', '11', '--no-waveforms',
    ]);
    const spo2Phases = () => sent.filter((s) => s.alarm?.code === 'MDC_EVT_LO_VAL_LT_LIM').map((s) => s.alarm!.phase);
    await waitFor(() => { const p = spo2Phases(); return p.includes('continue') && p.includes('end'); }, 15_000, 'an SpO2-low start, continue and end');
    await sim.stop();
    expectDelivered(sent, sink.readings);
    const alarms = sink.readings.filter((r) => r.kind === 'alarm' && r.code === 'MDC_EVT_LO_VAL_LT_LIM') as Array<AlarmBody & { deviceId: string }>;
    const phases = alarms.map((a) => a.phase);
    expect(phases[0]).to.equal('start');
    expect(phases).to.include.members(['continue', 'end']);
    expect(new Set(alarms.map((a) => a.alarmId))).to.deep.equal(new Set(['MDC_EVT_LO_VAL_LT_LIM|MDC_PULS_OXIM_SAT_O2|1.3.1.150456']));
    for (const a of alarms) {
      expect(a).to.include({ text: 'SpO2 thấp | giới hạn^90', priority: 'medium', active: a.phase !== 'end', state: a.phase === 'end' ? 'inactive' : 'active' });
      expect(a.source!.code).to.equal('MDC_PULS_OXIM_SAT_O2');
      // Below the 90 % limit while the alarm lasts, back above it at its end.
      if (a.phase === 'end') expect(a.source!.value).to.be.within(95, 99);
      else expect(a.source!.value).to.be.within(85, 89);
    }
    // The lead-off alarm alternates with it.
    expect(sink.readings.some((r) => r.kind === 'alarm' && r.code === 'MDC_EVT_LEAD_OFF')).to.equal(true);
  });

  it('server mode: the simulator reconnects after drops and after the listener restarts, losing nothing', async () => {
    const first = await serverDriver();
    const { sim, sent } = await simulator([
      '--port', String(first.port), '--equipment-id', '00A037FFFE0000AA', '--interval-ms', '50', '--seed', '9',
      '--disconnect-every-ms', '300', '--alarm-rate', '0', '--ack-timeout-ms', '500',
    ]);
    await waitFor(() => sim.stats.connects! >= 3 && sent.length >= 20, 10_000, 'three connections');
    // The listener goes away and comes back on the same port.
    await first.driver.stop();
    await sleep(300);
    const second = await serverDriver(first.port);
    const before = sent.length;
    await waitFor(() => sent.length >= before + 20, 10_000, 'traffic after the restart');
    await sim.stop();
    expect(second.driver.statusOf('mon').status).to.be.oneOf(['online', 'offline']);
    expectDelivered(sent, [...first.sink.readings, ...second.sink.readings]);
    expect(second.sink.readings.length).to.be.above(0);
  });

  it('client mode (PDS): connects, queries, heartbeats, and reconnects when the monitor restarts', async () => {
    const monitor = await mindrayHl7Simulator.start(['--pds-server', '--port', '0', '--interval-ms', '100', '--seed', '3']);
    running.push(monitor);
    const port = monitor.port!;
    const sink = new RecordingSink();
    const driver = createHl7Driver(
      [{ deviceId: 'pds', settings: { mode: 'client', port, heartbeatMs: 150, reconnectMinMs: 50, reconnectMaxMs: 200, staleAfterMs: 2000 } }],
      sink,
    );
    const statuses: string[] = [];
    driver.on('status', (_id, s) => statuses.push(s.status));
    const sent: SentValues[] = [];
    monitor.on('sent', (v) => sent.push(v));
    await driver.start();
    running.push(driver);
    await waitFor(() => sink.readings.length >= 25 && monitor.stats.heartbeats! >= 1, 5000, 'PDS readings and a heartbeat');
    expect(monitor.stats.queries).to.equal(1);
    const hr = sink.readings.filter((r) => r.code === 'MDC_ECG_HEART_RATE').map((r) => (r as { value: number }).value);
    expect(hr).to.deep.equal(sent.slice(0, hr.length).map((s) => s.numerics!.MDC_ECG_HEART_RATE));
    expect(sink.readings.some((r) => r.code === 'MDC_PRESS_BLD_NONINV_SYS')).to.equal(true);
    expect(driver.statusOf('pds').status).to.equal('online');

    await monitor.stop();
    await waitFor(() => driver.statusOf('pds').status === 'offline', 3000, 'offline');
    expect(driver.statusOf('pds').reason).to.match(/down/);
    await sleep(300); // a few failed attempts while the monitor is away
    const again = await mindrayHl7Simulator.start(['--pds-server', '--port', String(port), '--interval-ms', '100']);
    running.push(again);
    const count = sink.readings.length;
    await waitFor(() => sink.readings.length >= count + 10, 5000, 'readings after the monitor came back');
    expect(driver.statusOf('pds').status).to.equal('online');
    expect(driver.counters.reconnects).to.equal(1);
    expect(statuses).to.include.members(['offline', 'online']);
  });

  it('client mode (PDS): a refusing journal loses nothing, because no ACK means no resend', async () => {
    const monitor = await mindrayHl7Simulator.start(['--pds-server', '--port', '0', '--interval-ms', '50', '--seed', '5']);
    running.push(monitor);
    const sink = new RecordingSink();
    sink.reject = true; // the journal refuses from the start (full, or its disk failed)
    const driver = createHl7Driver([{ deviceId: 'pds', settings: { mode: 'client', port: monitor.port!, heartbeatMs: 150, staleAfterMs: 5000 } }], sink);
    const sent: SentValues[] = [];
    monitor.on('sent', (v) => sent.push(v));
    await driver.start();
    running.push(driver);
    await waitFor(() => sent.length >= 10 && (driver.pdsDelivery('pds')?.retries ?? 0) >= 2, 5000, 'messages sent while the sink refuses');
    expect(sink.readings).to.have.length(0);
    expect(driver.pdsDelivery('pds')!.buffered).to.be.greaterThan(0);

    sink.reject = false;
    await waitFor(() => driver.pdsDelivery('pds')!.buffered === 0 && sink.readings.length > 0, 10_000, 'the held readings delivered');
    // Every value the monitor sent, in order, the held ones first.
    const hr = sink.readings.filter((r) => r.code === 'MDC_ECG_HEART_RATE').map((r) => (r as { value: number }).value);
    expect(hr).to.deep.equal(sent.slice(0, hr.length).map((v) => v.numerics!.MDC_ECG_HEART_RATE));
    expect(hr.length).to.be.at.least(10);
    expect(driver.pdsDelivery('pds')!.overflowDropped).to.equal(0);
  });
});
