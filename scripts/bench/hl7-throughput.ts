// Readings per second one HL7 driver sustains on one core: a fast sender in a
// child process pipelines MLLP frames over loopback (window of unacknowledged
// messages), the driver parses, delivers to a sink that resolves at once, and
// ACKs. Not part of the test suite.
//
//   npx tsc -p tsconfig.json && node dist/scripts/bench/hl7-throughput.js [--seconds 5]

import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { createHl7Driver } from '../../src/devices/hl7/index.js';

interface Scenario {
  name: string;
  /** Readings per message. */
  readings: number;
  build(controlId: number): string;
}

const MSH = (id: number, type = 'ORU^R01^ORU_R01') =>
  `MSH|^~\\&|BENCH^00A037FFFE00BE01^EUI-64|BENCH|||20260912120000.000+0700||${type}|B${id}|P|2.6|||AL|NE`;
const OBR = (id: number) => `OBR|1|B${id}^BENCH||182777000^monitoring of patient^SCT|||20260912120000.000+0700`;

const NUMERIC_ROWS = [
  ['147842', 'MDC_ECG_HEART_RATE', '264864^MDC_DIM_BEAT_PER_MIN^MDC'],
  ['150456', 'MDC_PULS_OXIM_SAT_O2', '262688^MDC_DIM_PERCENT^MDC'],
  ['149530', 'MDC_PULS_OXIM_PULS_RATE', '264864^MDC_DIM_BEAT_PER_MIN^MDC'],
  ['151578', 'MDC_TTHOR_RESP_RATE', '264928^MDC_DIM_RESP_PER_MIN^MDC'],
  ['150344', 'MDC_TEMP', '268192^MDC_DIM_DEGC^MDC'],
  ['150301', 'MDC_PRESS_CUFF_SYS', '266016^MDC_DIM_MMHG^MDC'],
  ['150302', 'MDC_PRESS_CUFF_DIA', '266016^MDC_DIM_MMHG^MDC'],
  ['150303', 'MDC_PRESS_CUFF_MEAN', '266016^MDC_DIM_MMHG^MDC'],
  ['151708', 'MDC_CONC_AWAY_CO2_ET', '266016^MDC_DIM_MMHG^MDC'],
  ['148066', 'MDC_ECG_V_P_C_RATE', '264864^MDC_DIM_BEAT_PER_MIN^MDC'],
];

const SCENARIOS: Scenario[] = [
  {
    name: 'numerics (10 NM per message)',
    readings: 10,
    build: (id) =>
      [
        MSH(id),
        OBR(id),
        ...NUMERIC_ROWS.map(
          ([code, name, unit], i) =>
            `OBX|${i + 1}|NM|${code}^${name}^MDC|1.1.1.${code}|${60 + ((id + i) % 30)}|${unit}|||||R|||20260912120000.000+0700||||${i === 0 ? '00A037FFFE00BE01^BENCH^00A037FFFE00BE01^EUI-64' : ''}`,
        ),
      ].join('\r') + '\r',
  },
  {
    name: 'waveform (ECG 500 samples + pleth 125)',
    readings: 2,
    build: (id) => {
      const ecg = Array.from({ length: 500 }, (_, i) => Math.round(800 * Math.sin((i + id) / 20))).join('^');
      const pleth = Array.from({ length: 125 }, (_, i) => 2000 + Math.round(1000 * Math.sin((i + id) / 10))).join('^');
      return (
        [
          MSH(id),
          OBR(id),
          `OBX|1|NA|131330^MDC_ECG_ELEC_POTL_II^MDC|1.7.6.131330|${ecg}||||||R|||20260912120000.000+0700||||00A037FFFE00BE01^BENCH^00A037FFFE00BE01^EUI-64`,
          'OBX|2|NM|2436^MDC_ATTR_SAMP_RATE^MDC|1.7.6.131330.1|500|264640^MDC_DIM_HZ^MDC',
          'OBX|3|NM|2327^MDC_ATTR_NU_MSMT_RES^MDC|1.7.6.131330.2|0.001221|266418^MDC_DIM_MILLI_VOLT^MDC',
          `OBX|4|NA|150452^MDC_PULS_OXIM_PLETH^MDC|1.3.1.150452|${pleth}||||||R|||20260912120000.000+0700`,
          'OBX|5|NM|2436^MDC_ATTR_SAMP_RATE^MDC|1.3.1.150452.1|125|264640^MDC_DIM_HZ^MDC',
        ].join('\r') + '\r'
      );
    },
  },
];

const WINDOW = 32;

/** Child process: send frames as fast as the window of unacknowledged messages allows. */
async function runSender(port: number, scenarioIndex: number, seconds: number): Promise<void> {
  const scenario = SCENARIOS[scenarioIndex]!;
  const frames = Array.from({ length: 256 }, (_, i) => scenario.build(i));
  const socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  let next = 0;
  let outstanding = 0;
  let acked = 0;
  let tail = Buffer.alloc(0);
  const deadline = Date.now() + seconds * 1000;
  const pump = () => {
    const batch: Buffer[] = [];
    while (outstanding < WINDOW && Date.now() < deadline) {
      // Unique control ids, so the driver's resend filter never drops one.
      const text = frames[next % frames.length]!.replace(/\|B\d+\|P\|/, `|B${next}|P|`);
      batch.push(Buffer.from([0x0b]), Buffer.from(text), Buffer.from([0x1c, 0x0d]));
      next++;
      outstanding++;
    }
    if (batch.length) socket.write(Buffer.concat(batch));
  };
  socket.on('data', (chunk: Buffer) => {
    tail = Buffer.concat([tail, chunk]);
    let end: number;
    while ((end = tail.indexOf(0x1c)) >= 0) {
      acked++;
      outstanding--;
      tail = tail.subarray(end + 2);
    }
    pump();
    if (outstanding === 0 && Date.now() >= deadline) {
      socket.end();
      process.send?.({ acked });
    }
  });
  pump();
}

async function runScenario(index: number, seconds: number) {
  let readings = 0;
  let samples = 0;
  const driver = createHl7Driver([{ deviceId: 'bench', settings: { port: 0 } }], {
    accept: async (batch) => {
      readings += batch.length;
      for (const r of batch) if (r.kind === 'waveform') samples += r.samples.length;
    },
  });
  await driver.start();
  const port = driver.serverAddress('bench')!.port;
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  const child = fork(process.argv[1]!, ['--sender', String(port), '--scenario', String(index), '--seconds', String(seconds)]);
  const acked = await new Promise<number>((resolve) => child.once('message', (m: { acked: number }) => resolve(m.acked)));
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  await driver.stop();
  child.kill();
  return {
    scenario: SCENARIOS[index]!.name,
    seconds: Number(elapsed.toFixed(2)),
    messages: acked,
    messagesPerSecond: Math.round(acked / elapsed),
    readingsPerSecond: Math.round(readings / elapsed),
    samplesPerSecond: Math.round(samples / elapsed),
    driverCpuPercent: Math.round(((cpu.user + cpu.system) / 1e6 / elapsed) * 100),
    framesRejected: driver.counters.framesRejected,
  };
}

const { values } = parseArgs({
  options: { sender: { type: 'string' }, scenario: { type: 'string' }, seconds: { type: 'string' } },
});
const seconds = Number(values.seconds ?? 5);
if (values.sender) {
  await runSender(Number(values.sender), Number(values.scenario ?? 0), seconds);
} else {
  const results = [];
  for (let i = 0; i < SCENARIOS.length; i++) results.push(await runScenario(i, seconds));
  console.table(results);
  mkdirSync('bench-results', { recursive: true });
  writeFileSync(
    'bench-results/hl7-throughput.json',
    JSON.stringify({ date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, window: WINDOW, results }, null, 2) + '\n',
  );
  console.log('wrote bench-results/hl7-throughput.json');
}
