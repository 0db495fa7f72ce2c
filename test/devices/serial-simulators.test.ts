import { CMS50_CODES, createCms50Driver, createCytonDriver } from '../../src/devices/serial/index.js';
import { cms50Simulator } from '../../src/sim/serial/cms50.js';
import { cytonSimulator } from '../../src/sim/serial/cyton.js';
import type { DeviceDriver } from '../../src/devices/driver.js';
import type { RunningSimulator, SentValues } from '../../src/sim/simulator.js';
import { expect, RecordingSink, sleep, startPtyPair, waitFor, type PtyPair } from './serial-helpers.js';

const ECG_CODES = ['I', 'II', 'III', 'V1', 'V2', 'V3', 'V4', 'V5'].map((lead) => `MDC_ECG_ELEC_POTL_${lead}`);

function sentSamples(sent: SentValues[], code: string): number[] {
  return sent.flatMap((s) => s.waveformSamples?.[code] ?? []);
}

describe('serial: simulators drive the drivers over a socat pty pair', function () {
  this.timeout(30_000);
  let pair: PtyPair;
  let simulator: RunningSimulator | undefined;
  let driver: DeviceDriver | undefined;

  beforeEach(async () => {
    pair = await startPtyPair('sim');
  });

  afterEach(async () => {
    await simulator?.stop();
    simulator = undefined;
    await driver?.stop();
    driver = undefined;
    await pair.kill();
  });

  it('cyton: every sample the simulator sent arrives in mV, in order, without nulls', async () => {
    const sent: SentValues[] = [];
    // The simulator waits for the driver's 'b' before streaming, like the board.
    simulator = await cytonSimulator.start(['--path', pair.b, '--heart-rate', '80', '--seed', '7']);
    simulator.on('sent', (v) => sent.push(v));
    const sink = new RecordingSink();
    driver = createCytonDriver('ecg-sim', { path: pair.a }, sink);
    await driver.start();
    await waitFor(() => sink.waveforms().length >= 8 * 12, 10_000, 'about 1.2 s of ECG');
    await simulator.stop();
    simulator = undefined;
    await sleep(200);
    await driver.stop();

    const lengths = new Set<number>();
    for (const code of ECG_CODES) {
      const got = sink.samples(code);
      const expected = sentSamples(sent, code);
      expect(got.length, code).to.be.greaterThan(250);
      expect(got, code).to.deep.equal(expected);
      lengths.add(got.length);
    }
    expect(lengths.size).to.equal(1);
    // Lead II carries a QRS of about 1.1 mV at 80/min.
    const leadII = sink.samples('MDC_ECG_ELEC_POTL_II') as number[];
    expect(Math.max(...leadII)).to.be.within(0.9, 1.4);
    expect(driver.counters).to.include({ framesRejected: 0, bytesDiscarded: 0 });
    // Chunk times follow the sample clock: 100 ms apart (25 samples at 250 Hz), within clock corrections.
    const chunks = sink.waveforms('MDC_ECG_ELEC_POTL_II');
    for (let i = 1; i < chunks.length - 1; i++) expect(chunks[i]!.t - chunks[i - 1]!.t).to.be.closeTo(100, 25);
  });

  it('cms50: pleth samples equal what was sent and numerics are values the simulator sent', async () => {
    const sent: SentValues[] = [];
    const sink = new RecordingSink();
    driver = createCms50Driver('spo2-sim', { path: pair.a, numericIntervalMs: 250 }, sink);
    await driver.start();
    await waitFor(() => driver!.statusOf('spo2-sim').status !== 'offline', 5000, 'driver port open');
    simulator = await cms50Simulator.start(['--path', pair.b, '--heart-rate', '75', '--seed', '3']);
    simulator.on('sent', (v) => sent.push(v));
    await waitFor(() => sink.samples(CMS50_CODES.pleth).length >= 90 && sink.numerics(CMS50_CODES.spo2).length >= 4, 10_000, '1.5 s of pleth, four SpO2 numerics');
    await simulator.stop();
    simulator = undefined;
    await sleep(200);
    await driver.stop();

    const got = sink.samples(CMS50_CODES.pleth);
    const expected = sentSamples(sent, CMS50_CODES.pleth);
    expect(got.length).to.be.greaterThan(60);
    expect(got).to.deep.equal(expected);
    const sentSpo2 = new Set(sent.map((s) => s.numerics?.[CMS50_CODES.spo2]));
    const sentRate = new Set(sent.map((s) => s.numerics?.[CMS50_CODES.pulseRate]));
    for (const n of sink.numerics(CMS50_CODES.spo2)) expect(sentSpo2.has(n.value ?? undefined), `SpO2 ${n.value}`).to.equal(true);
    for (const n of sink.numerics(CMS50_CODES.pulseRate)) expect(sentRate.has(n.value ?? undefined), `PR ${n.value}`).to.equal(true);
    expect(driver.counters).to.include({ framesRejected: 0, bytesDiscarded: 0 });
  });

  it('cms50 with faults (corrupt, drop, split, burst): the driver survives, resyncs and counts what it discards', async () => {
    const sink = new RecordingSink();
    driver = createCms50Driver('spo2-faulty', { path: pair.a }, sink);
    await driver.start();
    await waitFor(() => driver!.statusOf('spo2-faulty').status !== 'offline', 5000, 'driver port open');
    simulator = await cms50Simulator.start([
      '--path', pair.b, '--seed', '11', '--corrupt-rate', '0.05', '--drop-rate', '0.05', '--split', '--burst', '100',
      '--finger-out-every-ms', '2500',
    ]);
    await sleep(3200);
    await simulator.stop();
    simulator = undefined;
    await driver.stop();
    const c = driver.counters;
    expect(c.framesDecoded).to.be.greaterThan(120);
    expect(c.bytesDiscarded).to.be.greaterThan(0);
    expect(sink.statuses(CMS50_CODES.fingerOut).map((s) => s.active)).to.include(true);
  });

  it('cyton with faults and a disconnect: the driver survives and fills the gap with nulls', async () => {
    simulator = await cytonSimulator.start([
      '--path', pair.b, '--seed', '5', '--corrupt-rate', '0.02', '--drop-rate', '0.02', '--split',
      '--disconnect-every-ms', '800', '--disconnect-for-ms', '300',
    ]);
    const sink = new RecordingSink();
    driver = createCytonDriver('ecg-faulty', { path: pair.a }, sink);
    await driver.start();
    await sleep(2500);
    await simulator.stop();
    simulator = undefined;
    await driver.stop();
    const c = driver.counters;
    expect(c.framesDecoded).to.be.greaterThan(200);
    expect(c.bytesDiscarded).to.be.greaterThan(0);
    expect(sink.samples('MDC_ECG_ELEC_POTL_I')).to.include(null);
  });
});
