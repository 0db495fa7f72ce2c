import { seededRandom } from '../random.js';
import { EventEmitter } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  DataType,
  MessageSecurityMode,
  nodesets,
  OPCUACertificateManager,
  OPCUAServer,
  RegisterServerMethod,
  SecurityPolicy,
  StatusCodes,
  VariantArrayType,
  type StatusCode,
  type UAVariable,
} from 'node-opcua';
import { createLogger } from '../../common/logger.js';
import type { RunningSimulator, SentValues, SimulatorCommand, SimulatorEvents } from '../simulator.js';
import { Ecg, Patient } from '../physiology.js';

// A patient monitor behind an OPC UA server. Written without the driver's code:
// its node layout and timestamp convention are its own, documented in
// docs/devices/opcua.md, and the driver only meets it through config mappings.
//
// Namespace 1 (urn:hoichan:simulator:monitor; the server's own namespace is
// skipped so the index is stable), under Objects/Monitor:
//   ns=1;s=Monitor.HR          Double  /min    MDC_ECG_HEART_RATE
//   ns=1;s=Monitor.SpO2        Double  %       MDC_PULS_OXIM_SAT_O2
//   ns=1;s=Monitor.RR          Double  /min    MDC_RESP_RATE
//   ns=1;s=Monitor.Temp        Double  Cel     MDC_TEMP
//   ns=1;s=Monitor.NIBP.Sys    Double  mm[Hg]  MDC_PRESS_BLD_NONINV_SYS
//   ns=1;s=Monitor.NIBP.Dia    Double  mm[Hg]  MDC_PRESS_BLD_NONINV_DIA
//   ns=1;s=Monitor.NIBP.Mean   Double  mm[Hg]  MDC_PRESS_BLD_NONINV_MEAN
//   ns=1;s=Monitor.ECG.II      Float[] mV      MDC_ECG_ELEC_POTL_II, 500 Hz, 50 samples per 100 ms
//   ns=1;s=Monitor.ECG.SampleRate Double Hz    (500, informative)
// Each ECG.II value's SourceTimestamp is the time of its LAST sample.

export const SIM_NAMESPACE_URI = 'urn:hoichan:simulator:monitor';

/**
 * The driver mappings a site config uses for this simulator's nodes (the table
 * above, as docs/devices/opcua.md gives it): one definition for the demo and tests.
 */
export const SIMULATOR_MAPPINGS = {
  'ns=1;s=Monitor.HR': { code: 'MDC_ECG_HEART_RATE', unit: '/min' },
  'ns=1;s=Monitor.SpO2': { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' },
  'ns=1;s=Monitor.RR': { code: 'MDC_RESP_RATE', unit: '/min' },
  'ns=1;s=Monitor.Temp': { code: 'MDC_TEMP', unit: 'Cel' },
  'ns=1;s=Monitor.NIBP.Sys': { code: 'MDC_PRESS_BLD_NONINV_SYS', unit: 'mm[Hg]' },
  'ns=1;s=Monitor.NIBP.Dia': { code: 'MDC_PRESS_BLD_NONINV_DIA', unit: 'mm[Hg]' },
  'ns=1;s=Monitor.NIBP.Mean': { code: 'MDC_PRESS_BLD_NONINV_MEAN', unit: 'mm[Hg]' },
  'ns=1;s=Monitor.ECG.II': { code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', kind: 'waveform' as const, sampleRate: 500 },
};
const ECG_RATE_HZ = 500;
const ECG_BLOCK = 50;
const ECG_PERIOD_MS = 1000 / ECG_RATE_HZ;
const ECG_TICK_MS = 100;

type NumericName = 'HR' | 'SpO2' | 'RR' | 'Temp' | 'NIBP.Sys' | 'NIBP.Dia' | 'NIBP.Mean';

const MDC_OF: Record<NumericName, string> = {
  HR: 'MDC_ECG_HEART_RATE',
  SpO2: 'MDC_PULS_OXIM_SAT_O2',
  RR: 'MDC_RESP_RATE',
  Temp: 'MDC_TEMP',
  'NIBP.Sys': 'MDC_PRESS_BLD_NONINV_SYS',
  'NIBP.Dia': 'MDC_PRESS_BLD_NONINV_DIA',
  'NIBP.Mean': 'MDC_PRESS_BLD_NONINV_MEAN',
};
const ECG_CODE = 'MDC_ECG_ELEC_POTL_II';

export interface OpcuaSimulatorOptions {
  port: number;
  host: string;
  heartRate: number;
  numericIntervalMs: number;
  nibpIntervalMs: number;
  restartEveryMs: number;
  restartDownMs: number;
  badStatusRate: number;
  pkiDir: string;
  seed: number;
  /** user:password accepted besides anonymous access. */
  user?: { name: string; password: string };
}

const USAGE = `hoichan simulate opcua [options]
  --port <n>                 TCP port (default 4840)
  --host <addr>              address to listen on and advertise (default 127.0.0.1)
  --hr <bpm>                 base heart rate (default 72)
  --numeric-interval-ms <n>  HR/SpO2/RR/Temp update period (default 1000)
  --nibp-interval-ms <n>     NIBP measurement period (default 180000; also one at start)
  --restart-every-ms <n>     fault: stop the server and start a new instance this often (default 0 = never)
  --restart-down-ms <n>      how long the server stays down on a restart (default 1000)
  --bad-status-rate <0..1>   fault: share of writes stamped BadSensorFailure (default 0)
  --user <name:password>     also accept this user name token (anonymous always allowed)
  --pki-dir <dir>            server certificate store (default <tmp>/hoichan-opcua-sim-pki)
  --seed <n>                 random seed for reproducible values
Nodes: ns=1;s=Monitor.HR, .SpO2, .RR, .Temp, .NIBP.Sys, .NIBP.Dia, .NIBP.Mean, .ECG.II (Float[50] @500 Hz per 100 ms)`;

function parseSimulatorArgs(argv: string[]): OpcuaSimulatorOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      port: { type: 'string', default: '4840' },
      host: { type: 'string', default: '127.0.0.1' },
      hr: { type: 'string', default: '72' },
      'numeric-interval-ms': { type: 'string', default: '1000' },
      'nibp-interval-ms': { type: 'string', default: '180000' },
      'restart-every-ms': { type: 'string', default: '0' },
      'restart-down-ms': { type: 'string', default: '1000' },
      'bad-status-rate': { type: 'string', default: '0' },
      user: { type: 'string' },
      'pki-dir': { type: 'string', default: path.join(os.tmpdir(), 'hoichan-opcua-sim-pki') },
      seed: { type: 'string' },
    },
  });
  const num = (name: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const n = Number(text);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name}: expected a number in [${min}, ${max}], got "${text}"`);
    return n;
  };
  let user: OpcuaSimulatorOptions['user'];
  if (values.user !== undefined) {
    const at = values.user.indexOf(':');
    if (at <= 0) throw new Error('--user: expected name:password');
    user = { name: values.user.slice(0, at), password: values.user.slice(at + 1) };
  }
  return {
    port: num('port', values.port, 1, 65535),
    host: values.host,
    heartRate: num('hr', values.hr, 20, 250),
    numericIntervalMs: num('numeric-interval-ms', values['numeric-interval-ms'], 50),
    nibpIntervalMs: num('nibp-interval-ms', values['nibp-interval-ms'], 1000),
    restartEveryMs: num('restart-every-ms', values['restart-every-ms'], 0),
    restartDownMs: num('restart-down-ms', values['restart-down-ms'], 0),
    badStatusRate: num('bad-status-rate', values['bad-status-rate'], 0, 1),
    pkiDir: values['pki-dir'],
    seed: values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : num('seed', values.seed, 0),
    ...(user ? { user } : {}),
  };
}

interface ServerNodes {
  server: OPCUAServer;
  numerics: Record<NumericName, UAVariable>;
  ecg: UAVariable;
}

export class OpcuaMonitorSimulator extends EventEmitter<SimulatorEvents> implements RunningSimulator {
  readonly options: OpcuaSimulatorOptions;
  /** Counts for tests and demos: writes made, writes stamped bad, server restarts. */
  readonly stats = { writes: 0, badWrites: 0, restarts: 0 };
  readonly #log = createLogger('opcua-sim');
  readonly #random: () => number;
  #nodes?: ServerNodes;
  #stopped = false;
  #timers: NodeJS.Timeout[] = [];
  #restarting?: Promise<void>;
  readonly #lastWritten = new Map<string, { variant: { dataType: DataType; arrayType: VariantArrayType; value: number | Float32Array }; status: StatusCode; time: Date }>();
  // Physiology carried across server restarts.
  readonly #patient: Patient;
  #values: Record<NumericName, number>;
  #ecg: Ecg;
  #ecgNextSampleMs: number;

  constructor(options: OpcuaSimulatorOptions) {
    super();
    this.options = options;
    this.#random = seededRandom(options.seed);
    this.#patient = new Patient(this.#random, { heartRate: options.heartRate });
    this.#values = { HR: 0, SpO2: 0, RR: 0, Temp: 0, 'NIBP.Sys': 0, 'NIBP.Dia': 0, 'NIBP.Mean': 0 };
    this.#takeVitals();
    this.#ecgNextSampleMs = Date.now();
    this.#ecg = this.#newEcg();
  }

  get endpointUrl(): string {
    return `opc.tcp://${this.options.host}:${this.options.port}`;
  }

  /**
   * The server's application certificate (PEM). A client that does not accept
   * unknown servers trusts this one once it is copied into its pkiDir/trusted/certs.
   */
  get certificateFile(): string {
    return path.join(this.options.pkiDir, 'server', 'own', 'certs', 'certificate.pem');
  }

  /** Security of the open secure channels, for diagnostics and tests. */
  get secureChannels(): Array<{ securityMode: string; securityPolicy: string }> {
    const server = this.#nodes?.server;
    if (!server) return [];
    return server.endpoints.flatMap((endpoint) =>
      endpoint.getChannels().map((channel) => ({
        securityMode: MessageSecurityMode[channel.securityMode] ?? String(channel.securityMode),
        securityPolicy: String(channel.securityPolicy).replace(/^.*#/, ''),
      })),
    );
  }

  async start(): Promise<void> {
    this.#measureNibp();
    this.#nodes = await this.#startServer();
    // The waveform starts now, not before the (slow) server start, so there is no backlog to catch up.
    this.#ecgNextSampleMs = Date.now();
    this.#ecg = this.#newEcg();
    this.#writeNumerics(true, false);
    this.#timers.push(setInterval(() => this.#writeNumerics(false), this.options.numericIntervalMs));
    this.#timers.push(
      setInterval(() => {
        this.#measureNibp();
        this.#writeNibp();
      }, this.options.nibpIntervalMs),
    );
    this.#timers.push(setInterval(() => this.#writeEcg(), ECG_TICK_MS));
    if (this.options.restartEveryMs > 0) {
      this.#timers.push(setInterval(() => void this.#restart(), this.options.restartEveryMs));
    }
    this.#log.info({ endpoint: this.endpointUrl, seed: this.options.seed, certificateFile: this.certificateFile }, 'OPC UA monitor simulator listening (copy certificateFile into the agent pkiDir/trusted/certs to trust it)');
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const timer of this.#timers) clearInterval(timer);
    await this.#restarting;
    const nodes = this.#nodes;
    this.#nodes = undefined;
    if (nodes) await nodes.server.shutdown(0);
  }

  // --- server ---------------------------------------------------------------

  async #startServer(): Promise<ServerNodes> {
    const { pkiDir, port, host, user } = this.options;
    const server = new OPCUAServer({
      port,
      host,
      hostname: host,
      // Our namespace becomes index 1, so nodeIds read ns=1;s=Monitor.HR.
      skipOwnNamespace: true,
      nodeset_filename: [nodesets.standard],
      registerServerMethod: RegisterServerMethod.HIDDEN,
      serverCertificateManager: new OPCUACertificateManager({ rootFolder: path.join(pkiDir, 'server'), automaticallyAcceptUnknownCertificate: true }),
      userCertificateManager: new OPCUACertificateManager({ rootFolder: path.join(pkiDir, 'user'), automaticallyAcceptUnknownCertificate: true }),
      securityModes: [MessageSecurityMode.None, MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt],
      securityPolicies: [SecurityPolicy.None, SecurityPolicy.Basic256Sha256, SecurityPolicy.Aes128_Sha256_RsaOaep],
      allowAnonymous: true,
      ...(user ? { userManager: { isValidUser: (name: string, password: string) => name === user.name && password === user.password } } : {}),
      buildInfo: { productName: 'Hoichan OPC UA monitor simulator', manufacturerName: 'Hoichan' },
    });
    await server.initialize();
    const addressSpace = server.engine.addressSpace;
    if (!addressSpace) throw new Error('OPC UA server has no address space');
    const ns = addressSpace.registerNamespace(SIM_NAMESPACE_URI);
    const monitor = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: 'Monitor', nodeId: 's=Monitor' });
    const nibp = ns.addObject({ componentOf: monitor, browseName: 'NIBP', nodeId: 's=Monitor.NIBP' });
    const ecgFolder = ns.addObject({ componentOf: monitor, browseName: 'ECG', nodeId: 's=Monitor.ECG' });
    const addDouble = (name: NumericName) =>
      ns.addVariable({
        componentOf: name.startsWith('NIBP.') ? nibp : monitor,
        browseName: name.replace('NIBP.', ''),
        nodeId: `s=Monitor.${name}`,
        dataType: 'Double',
      });
    const numerics = Object.fromEntries((Object.keys(MDC_OF) as NumericName[]).map((name) => [name, addDouble(name)])) as Record<NumericName, UAVariable>;
    const ecg = ns.addVariable({ componentOf: ecgFolder, browseName: 'II', nodeId: 's=Monitor.ECG.II', dataType: 'Float', valueRank: 1, arrayDimensions: [ECG_BLOCK] });
    ns.addVariable({ componentOf: ecgFolder, browseName: 'SampleRate', nodeId: 's=Monitor.ECG.SampleRate', dataType: 'Double', value: { dataType: DataType.Double, value: ECG_RATE_HZ } });
    // A fresh instance (restart) serves the last values, with their original
    // times and status, until the next update: what a rebooted gateway would do.
    for (const variable of [...Object.values(numerics), ecg]) {
      const last = this.#lastWritten.get(variable.nodeId.toString());
      if (last) variable.setValueFromSource(last.variant, last.status, last.time);
    }
    await server.start();
    return { server, numerics, ecg };
  }

  async #restart(): Promise<void> {
    if (this.#restarting || this.#stopped || !this.#nodes) return;
    const old = this.#nodes;
    this.#restarting = (async () => {
      this.#nodes = undefined;
      this.#log.info('fault: stopping the OPC UA server');
      await old.server.shutdown(0);
      await new Promise((resolve) => setTimeout(resolve, this.options.restartDownMs));
      if (this.#stopped) return;
      this.stats.restarts++;
      // Samples of the down time are lost, as on a real device reboot.
      this.#ecgNextSampleMs = Math.max(this.#ecgNextSampleMs, Date.now() - ECG_TICK_MS);
      this.#nodes = await this.#startServer();
      this.#log.info({ restarts: this.stats.restarts }, 'fault: OPC UA server started again');
    })()
      .catch((err: unknown) => {
        this.emit('error', err instanceof Error ? err : new Error(String(err)));
      })
      .finally(() => {
        this.#restarting = undefined;
      });
    await this.#restarting;
  }

  // --- values ---------------------------------------------------------------

  #writeValue(variable: UAVariable, dataType: DataType, value: number | Float32Array, sourceTime: Date): boolean {
    const bad = this.#random() < this.options.badStatusRate;
    const status = bad ? StatusCodes.BadSensorFailure : StatusCodes.Good;
    const variant = { dataType, arrayType: typeof value === 'number' ? VariantArrayType.Scalar : VariantArrayType.Array, value };
    variable.setValueFromSource(variant, status, sourceTime);
    this.#lastWritten.set(variable.nodeId.toString(), { variant, status, time: sourceTime });
    this.stats.writes++;
    if (bad) this.stats.badWrites++;
    return !bad;
  }

  /** A clean lead II (the monitor filters it) following the patient's heart rate. */
  #newEcg(): Ecg {
    return new Ecg(this.#ecgNextSampleMs / 1000, () => this.#patient.heartRate);
  }

  #takeVitals(): void {
    const vitals = this.#patient.vitals();
    this.#values.HR = vitals.heartRate;
    this.#values.SpO2 = vitals.spo2;
    this.#values.RR = vitals.respRate;
    this.#values.Temp = vitals.temperature;
  }

  #measureNibp(): void {
    const bp = this.#patient.bloodPressure();
    this.#values['NIBP.Sys'] = bp.systolic;
    this.#values['NIBP.Dia'] = bp.diastolic;
    this.#values['NIBP.Mean'] = bp.mean;
  }

  /** @param resample false to rewrite the current values (server restart) */
  #writeNumerics(withNibp: boolean, resample = true): void {
    const nodes = this.#nodes;
    if (!nodes || this.#stopped) return;
    if (resample) this.#takeVitals();
    const names: NumericName[] = ['HR', 'SpO2', 'RR', 'Temp', ...(withNibp ? (['NIBP.Sys', 'NIBP.Dia', 'NIBP.Mean'] as const) : [])];
    this.#emitNumerics(nodes, names);
  }

  #writeNibp(): void {
    if (this.#nodes && !this.#stopped) this.#emitNumerics(this.#nodes, ['NIBP.Sys', 'NIBP.Dia', 'NIBP.Mean']);
  }

  #emitNumerics(nodes: ServerNodes, names: NumericName[]): void {
    const now = new Date();
    const numerics: Record<string, number> = {};
    for (const name of names) {
      if (this.#writeValue(nodes.numerics[name], DataType.Double, this.#values[name], now)) numerics[MDC_OF[name]] = this.#values[name];
    }
    const sent: SentValues = { t: now.getTime(), numerics };
    this.emit('sent', sent);
  }

  /** Writes every whole 50-sample block whose last sample time has passed. */
  #writeEcg(): void {
    const nodes = this.#nodes;
    if (!nodes || this.#stopped) return;
    while (this.#ecgNextSampleMs + (ECG_BLOCK - 1) * ECG_PERIOD_MS <= Date.now()) {
      const firstMs = this.#ecgNextSampleMs;
      const block = new Float32Array(ECG_BLOCK);
      for (let i = 0; i < ECG_BLOCK; i++) block[i] = this.#ecg.leadII((firstMs + i * ECG_PERIOD_MS) / 1000);
      this.#ecgNextSampleMs += ECG_BLOCK * ECG_PERIOD_MS;
      const lastSampleTime = new Date(firstMs + (ECG_BLOCK - 1) * ECG_PERIOD_MS);
      if (this.#writeValue(nodes.ecg, DataType.Float, block, lastSampleTime)) {
        this.emit('sent', { t: firstMs, waveformSamples: { [ECG_CODE]: Array.from(block) } });
      }
    }
  }
}

export const opcuaSimulator: SimulatorCommand = {
  kind: 'opcua',
  summary: 'patient monitor behind an OPC UA server (HR, SpO2, NIBP, RR, Temp, ECG lead II at 500 Hz)',
  usage: USAGE,
  async start(argv: string[]): Promise<RunningSimulator> {
    const simulator = new OpcuaMonitorSimulator(parseSimulatorArgs(argv));
    await simulator.start();
    return simulator;
  },
};
