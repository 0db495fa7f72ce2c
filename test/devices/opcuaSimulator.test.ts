import { expect } from 'chai';
import path from 'node:path';
import { createOpcuaDriver } from '../../src/devices/opcua/index.js';
import { opcuaSimulator, SIMULATOR_MAPPINGS } from '../../src/sim/opcua/simulator.js';
import type { DeviceDriver } from '../../src/devices/driver.js';
import type { NumericBody, WaveformBody } from '../../src/devices/reading.js';
import type { RunningSimulator, SentValues } from '../../src/sim/simulator.js';
import { CLIENT_PKI_DIR, freePort, RecordingSink, TEST_PKI_DIR, waitFor, waitForStatus } from './opcuaFixtures.js';

const DEVICE = 'sim-monitor';


/** Everything the simulator reported writing, keyed by code and time. */
class SentLog {
  readonly numerics = new Map<string, number>();
  readonly waveforms = new Map<string, number[]>();
  record(sent: SentValues): void {
    for (const [code, value] of Object.entries(sent.numerics ?? {})) this.numerics.set(`${code}@${sent.t}`, value);
    for (const [code, samples] of Object.entries(sent.waveformSamples ?? {})) this.waveforms.set(`${code}@${sent.t}`, samples);
  }
}

describe('OPC UA simulator read by the OPC UA driver', function () {
  this.timeout(30_000);
  let simulator: RunningSimulator | undefined;
  let driver: DeviceDriver | undefined;

  afterEach(async () => {
    await driver?.stop();
    await simulator?.stop();
    driver = undefined;
    simulator = undefined;
  });

  async function startPair(extraArgs: string[]) {
    const port = await freePort();
    simulator = await opcuaSimulator.start([
      '--port', String(port), '--host', '127.0.0.1', '--seed', '7', '--numeric-interval-ms', '200',
      '--pki-dir', path.join(TEST_PKI_DIR, 'simulator'), ...extraArgs,
    ]);
    const sent = new SentLog();
    simulator.on('sent', (values) => sent.record(values));
    const sink = new RecordingSink();
    driver = createOpcuaDriver(DEVICE, { endpoint: `opc.tcp://127.0.0.1:${port}`, securityMode: 'None', publishingIntervalMs: 100, reconnectMaxDelayMs: 500, pkiDir: CLIENT_PKI_DIR, mappings: SIMULATOR_MAPPINGS }, sink);
    await driver.start();
    return { sent, sink, driver };
  }

  it('delivers exactly the values the simulator wrote', async () => {
    const { sent, sink, driver } = await startPair([]);
    await waitForStatus(driver, DEVICE, 'online');
    await waitFor('2 s of ECG', () => sink.of('MDC_ECG_ELEC_POTL_II').length >= 20);
    await driver.stop();

    const numerics = sink.readings.filter((r): r is NumericBody & { deviceId: string } => r.kind === 'numeric');
    const codes = new Set(numerics.map((r) => r.code));
    expect([...codes].sort()).to.deep.equal(Object.values(SIMULATOR_MAPPINGS).filter((m) => !('kind' in m)).map((m) => m.code).sort());
    // The first values may predate our 'sent' listener (written at start); every later one must match.
    const matched = numerics.filter((r) => sent.numerics.has(`${r.code}@${r.t}`));
    expect(matched.length).to.be.greaterThan(numerics.length - 8);
    for (const r of matched) expect(r.value, `${r.code}@${r.t}`).to.equal(sent.numerics.get(`${r.code}@${r.t}`));

    const ecg = sink.of('MDC_ECG_ELEC_POTL_II') as WaveformBody[];
    for (const chunk of ecg) {
      expect(chunk.sampleRate).to.equal(500);
      expect(chunk.samples, `ECG chunk at ${chunk.t}`).to.deep.equal(sent.waveforms.get(`MDC_ECG_ELEC_POTL_II@${chunk.t}`));
    }
    // Consecutive chunks tile the time axis: 50 samples at 2 ms.
    for (let i = 1; i < ecg.length; i++) expect(ecg[i]!.t - ecg[i - 1]!.t).to.equal(100);
    // A P-QRS-T trace at ~72/min: R peaks above 1 mV, at least two beats in 2 s.
    const all = ecg.flatMap((c) => c.samples as number[]);
    expect(Math.max(...all)).to.be.within(1.0, 1.6);
    expect(Math.min(...all)).to.be.within(-0.5, -0.1);
    const peaks = all.filter((v, i) => v > 0.8 && v >= (all[i - 1] ?? -Infinity) && v > (all[i + 1] ?? -Infinity));
    expect(peaks.length).to.be.within(2, 4);
  });

  it('survives simulated server restarts and marks bad writes as null', async () => {
    const { sink, driver } = await startPair(['--restart-every-ms', '2500', '--restart-down-ms', '300', '--bad-status-rate', '0.2']);
    const statuses: string[] = [];
    driver.on('status', (_id, s) => statuses.push(s.status));
    const sim = simulator as unknown as { stats: { restarts: number; badWrites: number } };
    await waitFor('one restart', () => sim.stats.restarts >= 1, 15_000);
    const afterRestart = Date.now();
    await waitFor('ECG after the restart', () => sink.of('MDC_ECG_ELEC_POTL_II').some((r) => r.rt > afterRestart + 500), 15_000);
    expect(statuses).to.include('offline');
    expect(driver.counters.reconnects).to.be.at.least(1);
    expect(sim.stats.badWrites).to.be.greaterThan(0);
    expect(sink.readings.some((r) => r.kind === 'numeric' && r.value === null)).to.equal(true);
    // The restarted server repeats the last values with their original times; they are not new readings.
    const keys = sink.readings.filter((r) => r.kind === 'numeric').map((r) => `${r.code}@${r.t}`);
    expect(new Set(keys).size).to.equal(keys.length);
  });
});
