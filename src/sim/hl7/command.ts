// `hoichan simulate mindray-hl7`: a Mindray eGateway / BeneVision monitor
// speaking IHE PCD-01/PCD-04 over MLLP to a listener, or (--pds-server) a
// legacy PDS monitor that waits for the gateway to connect.

import { EventEmitter } from 'node:events';
import { parseArgs } from 'node:util';
import type { RunningSimulator, SimulatorCommand, SimulatorEvents } from '../simulator.js';
import { leadOffAlarmMessage, numericsMessage, spo2LowAlarmMessage, waveformMessage, type Sender } from './messages.js';
import { PdsMonitorSimulator } from './pdsMonitor.js';
import { Ecg, Patient, Pleth } from '../physiology.js';
import { seededRandom } from '../random.js';
import { MllpSender } from './sender.js';

const usage = `Options:
  --host <addr>               listener to connect to (default 127.0.0.1); with --pds-server, address to bind
  --port <n>                  default 4601
  --interval-ms <n>           numerics and waveform window period (default 1000)
  --equipment-id <eui64>      OBX-18 equipment id (default 00A037FFFE000001)
  --ecg-rate <250|500>        ECG lead II sample rate (default 250)
  --pleth-rate <n>            pleth sample rate (default 125)
  --nibp-every-ms <n>         NIBP measurement period; also once at start (default 300000)
  --alarm-rate <p>            chance per interval of starting (or ending) an alarm, alternately
                              lead-off and SpO2 low; SpO2 low sends a continue every 3 intervals (default 0.02)
  --no-waveforms              numerics and alarms only
  --timezone <+HHMM>          offset written in HL7 times (default +0700)
  --ack-timeout-ms <n>        resend when no ACK within this (default 5000)
  --seed <n>                  PRNG seed (default: time based)
  --pds-server                act as a legacy PDS monitor: listen, answer QRY^R02, stream 2.3.1 results
Faults:
  --corrupt-rate <p>          chance of garbage or a truncated frame before a frame (default 0)
  --split                     write every frame in several pieces
  --burst <n>                 write n messages at once, n outstanding (default 1)
  --disconnect-every-ms <n>   drop the connection this often (default 0 = never)`;

function num(value: string | undefined, fallback: number, name: string, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}`);
  return n;
}

/** While an SpO2-low alarm lasts, the monitor repeats it (phase continue) this often. */
const CONTINUE_EVERY_TICKS = 3;

/** The PCD-01 sender: one tick per interval builds numerics, a waveform window and now and then an alarm. */
class MindrayHl7Simulator extends EventEmitter<SimulatorEvents> implements RunningSimulator {
  readonly sender: MllpSender;
  readonly #timer: NodeJS.Timeout;

  constructor(
    options: {
      intervalMs: number;
      nibpEveryMs: number;
      alarmRate: number;
      waveforms: boolean;
      ecgRate: number;
      plethRate: number;
      identity: Sender;
      random: () => number;
    },
    sender: MllpSender,
  ) {
    super();
    this.sender = sender;
    sender.on('sent', (v) => this.emit('sent', v));
    sender.on('error', (e) => {
      if (this.listenerCount('error') > 0) this.emit('error', e);
    });
    const patient = new Patient(options.random);
    // Lead II with a little noise in mV; pleth in the monitor's 0..4095 units.
    const ecg = new Ecg(0, () => patient.heartRate, { noiseMv: 0.005, random: options.random });
    const pleth = new Pleth(0, () => patient.heartRate, { offset: 800, span: 2400 });
    let ecgIndex = 0;
    let plethIndex = 0;
    let seq = 0;
    let lastNibp = -Infinity;
    // One alarm at a time, alternating lead-off (technical) and SpO2 low (a
    // desaturation episode with start, a continue every few ticks, and end).
    let alarm: { kind: 'lead-off' | 'spo2-low'; ticks: number } | undefined;
    let nextAlarm: 'lead-off' | 'spo2-low' = 'lead-off';
    let windowStart = Date.now() - options.intervalMs;
    // A random prefix keeps control ids unique across simulator restarts.
    const prefix = Math.floor(options.random() * 1e6).toString(36).toUpperCase();
    const nextId = () => `${prefix}${++seq}`;
    const tick = () => {
      const now = Date.now();
      // Decided before the vitals so the numerics and the alarm's SpO2 agree.
      let alarmPhase: 'start' | 'continue' | 'end' | undefined;
      if (alarm === undefined) {
        if (options.random() < options.alarmRate) {
          alarm = { kind: nextAlarm, ticks: 0 };
          nextAlarm = nextAlarm === 'lead-off' ? 'spo2-low' : 'lead-off';
          alarmPhase = 'start';
        }
      } else if (options.random() < options.alarmRate) {
        alarmPhase = 'end';
      } else if (++alarm.ticks % CONTINUE_EVERY_TICKS === 0) {
        alarmPhase = 'continue';
      }
      if (alarm?.kind === 'spo2-low' && alarmPhase !== undefined) patient.desaturated = alarmPhase !== 'end';
      const vitals = patient.vitals();
      const nibp = now - lastNibp >= options.nibpEveryMs ? patient.bloodPressure() : undefined;
      if (nibp) lastNibp = now;
      sender.enqueue(numericsMessage(nextId(), now, options.identity, vitals, nibp));
      if (options.waveforms) {
        const seconds = (now - windowStart) / 1000;
        const ecgCount = Math.max(1, Math.round(seconds * options.ecgRate));
        const plethCount = Math.max(1, Math.round(seconds * options.plethRate));
        sender.enqueue(
          waveformMessage(nextId(), windowStart, now, options.identity,
            { rate: options.ecgRate, millivolts: Array.from({ length: ecgCount }, () => ecg.leadII(ecgIndex++ / options.ecgRate)) },
            { rate: options.plethRate, values: Array.from({ length: plethCount }, () => Math.round(pleth.sample(plethIndex++ / options.plethRate).value)) }),
        );
        windowStart = now;
      }
      if (alarm && alarmPhase) {
        if (alarm.kind === 'spo2-low') sender.enqueue(spo2LowAlarmMessage(nextId(), now, options.identity, alarmPhase, vitals.spo2));
        else if (alarmPhase !== 'continue') sender.enqueue(leadOffAlarmMessage(nextId(), now, options.identity, alarmPhase === 'start'));
        if (alarmPhase === 'end') alarm = undefined;
      }
    };
    this.#timer = setInterval(tick, options.intervalMs);
    sender.start();
    tick();
  }

  get stats(): Readonly<Record<string, number>> {
    return this.sender.stats;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.sender.stop();
  }
}

export interface MindrayHl7SimulatorHandle extends RunningSimulator {
  /** Bound port in --pds-server mode. */
  readonly port?: number;
  /** Messages sent, acknowledged, resent...; queries and heartbeats seen in --pds-server mode. */
  readonly stats: Readonly<Record<string, number>>;
}

async function start(argv: string[]): Promise<MindrayHl7SimulatorHandle> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'interval-ms': { type: 'string' },
      'equipment-id': { type: 'string' },
      'ecg-rate': { type: 'string' },
      'pleth-rate': { type: 'string' },
      'nibp-every-ms': { type: 'string' },
      'alarm-rate': { type: 'string' },
      'no-waveforms': { type: 'boolean' },
      timezone: { type: 'string' },
      'ack-timeout-ms': { type: 'string' },
      seed: { type: 'string' },
      'pds-server': { type: 'boolean' },
      'corrupt-rate': { type: 'string' },
      split: { type: 'boolean' },
      burst: { type: 'string' },
      'disconnect-every-ms': { type: 'string' },
    },
  });
  const host = values.host ?? '127.0.0.1';
  const port = num(values.port, 4601, 'port');
  const intervalMs = num(values['interval-ms'], 1000, 'interval-ms', 10);
  const nibpEveryMs = num(values['nibp-every-ms'], 300_000, 'nibp-every-ms', 1);
  const random = seededRandom(num(values.seed, Date.now() % 2 ** 31, 'seed'));
  if (values['pds-server']) {
    return PdsMonitorSimulator.start({ host, port, intervalMs, nibpEveryMs, random });
  }
  const equipmentId = (values['equipment-id'] ?? '00A037FFFE000001').toUpperCase();
  if (!/^[0-9A-F]{16}$/.test(equipmentId)) throw new Error('--equipment-id must be 16 hex digits (EUI-64)');
  const offset = values.timezone ?? '+0700';
  if (!/^[+-]\d{4}$/.test(offset)) throw new Error('--timezone must look like +0700');
  const ecgRate = num(values['ecg-rate'], 250, 'ecg-rate', 1);
  if (ecgRate !== 250 && ecgRate !== 500) throw new Error('--ecg-rate must be 250 or 500');
  const corruptRate = num(values['corrupt-rate'], 0, 'corrupt-rate');
  const alarmRate = num(values['alarm-rate'], 0.02, 'alarm-rate');
  if (corruptRate > 1 || alarmRate > 1) throw new Error('rates are probabilities between 0 and 1');
  const sender = new MllpSender({
    host,
    port,
    ackTimeoutMs: num(values['ack-timeout-ms'], 5000, 'ack-timeout-ms', 10),
    reconnectMs: 200,
    maxQueued: 600,
    random,
    faults: {
      corruptRate,
      split: values.split ?? false,
      burst: Math.floor(num(values.burst, 1, 'burst', 1)),
      disconnectEveryMs: num(values['disconnect-every-ms'], 0, 'disconnect-every-ms'),
    },
  });
  return new MindrayHl7Simulator(
    {
      intervalMs,
      nibpEveryMs,
      alarmRate,
      waveforms: !values['no-waveforms'],
      ecgRate,
      plethRate: num(values['pleth-rate'], 125, 'pleth-rate', 1),
      identity: { equipmentId, offset },
      random,
    },
    sender,
  );
}

export interface MindrayHl7Command extends SimulatorCommand {
  start(argv: string[]): Promise<MindrayHl7SimulatorHandle>;
}

export const mindrayHl7Simulator: MindrayHl7Command = {
  kind: 'mindray-hl7',
  summary: 'Mindray monitor over HL7 v2/MLLP: PCD-01 numerics and waveforms, PCD-04 alarms; or a legacy PDS monitor (--pds-server)',
  usage,
  start,
};
