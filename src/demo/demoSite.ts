// A demo site: the four simulated devices against the real drivers over real
// transports (HL7 over TCP to the agent's listener, Cyton and CMS50 over socat
// pty pairs, an OPC UA server), and a site agent streaming them to the hub
// through the uplink, exactly as a site PC would. Used by `hoichan demo`
// and by the simulator end-to-end test.

import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentConfigOf } from '../agent/config.js';
import { SiteAgent } from '../agent/SiteAgent.js';
import type { RunningSimulator } from '../sim/simulator.js';
import { OpcuaMonitorSimulator, SIMULATOR_MAPPINGS } from '../sim/opcua/simulator.js';
import { simulatorCommands } from '../sim/index.js';
import { parseSiteConfig, type SiteConfigInput } from '../devices/siteConfig.js';
import { IngestSender } from '../devices/video/IngestSender.js';
import { createLogger } from '../common/logger.js';
import { startPtyPair, type PtyPair } from '../sim/ptyPair.js';

const log = createLogger('demo-site');

export interface DemoSiteOptions {
  hubUrl: string;
  /** The site agent's uplink token (role 'agent', sub siteId) granting conferenceId. */
  token: string;
  /** A person token (role 'site') for conferenceId, for the ultrasound ingest over the HTTP API; needed with ultrasound. */
  ingestToken?: string;
  siteId: string;
  conferenceId: string;
  /** Working directory for the journal, pty links and PKI; a fresh temp dir when absent (removed on stop). */
  dir?: string;
  /** Simulator and uplink tuning for tests; the demo uses the defaults. */
  hl7IntervalMs?: number;
  opcuaNumericIntervalMs?: number;
  hub?: Record<string, unknown>;
  journal?: Record<string, unknown>;
  seed?: number;
  /** Also send a simulated ultrasound picture (ffmpeg → RTP ingest), as the demo does. */
  ultrasound?: boolean;
  /**
   * Put before each device id (e.g. 'site-07-'): a device id belongs to one site on the hub, so
   * several demo sites on one hub (the soak bench) need their own. None for the demo.
   */
  deviceIdPrefix?: string;
}

export interface DemoLayout {
  dir: string;
  hl7Port: number;
  opcuaPort: number;
  cyton: { agentEnd: string; deviceEnd: string };
  cms50: { agentEnd: string; deviceEnd: string };
}

/** The demo site config (same shape as config/site.example.json) for a layout. */
export function demoSiteConfig(options: DemoSiteOptions, layout: DemoLayout): SiteConfigInput {
  const prefix = options.deviceIdPrefix ?? '';
  return {
    siteId: options.siteId,
    conferenceId: options.conferenceId,
    hub: { url: options.hubUrl, token: options.token, ...options.hub },
    journal: { dir: join(layout.dir, 'journal'), ...options.journal },
    devices: [
      {
        id: `${prefix}bed1-mindray`,
        type: 'vitals',
        model: 'Mindray BeneVision N12 (eGateway HL7)',
        protocol: 'hl7-mllp',
        settings: { mode: 'server', host: '127.0.0.1', port: layout.hl7Port, timezoneOffset: '+0700' },
      },
      { id: `${prefix}bed1-cyton-ecg`, type: 'ecg', model: 'OpenBCI Cyton (ECG front end)', protocol: 'cyton', settings: { path: layout.cyton.agentEnd, gain: 24, sampleRate: 250 } },
      { id: `${prefix}bed1-cms50`, type: 'spo2', model: 'Contec CMS50D+', protocol: 'cms50', settings: { path: layout.cms50.agentEnd } },
      {
        id: `${prefix}bed2-opcua-monitor`,
        type: 'vitals',
        model: 'OPC UA monitor (hoichan simulate opcua)',
        protocol: 'opcua',
        settings: {
          // The defaults (SignAndEncrypt, Basic256Sha256); the simulator's certificate
          // is put in the agent's trusted folder the way an engineer would (start()).
          endpoint: `opc.tcp://127.0.0.1:${layout.opcuaPort}`,
          publishingIntervalMs: 100,
          reconnectMaxDelayMs: 1000,
          pkiDir: agentPkiDir(layout),
          mappings: SIMULATOR_MAPPINGS,
        },
      },
    ],
  };
}

export type DemoSimulatorKind = 'mindray-hl7' | 'cyton' | 'cms50' | 'opcua';

export class DemoSite {
  readonly #stops: Array<() => Promise<unknown>> = [];

  private constructor(
    readonly agent: SiteAgent,
    readonly layout: DemoLayout,
    /** Running simulators by kind (tests listen to their 'sent'). */
    readonly simulators: Map<DemoSimulatorKind, RunningSimulator>,
  ) {}

  /**
   * Starts the devices' transports, the OPC UA server, the agent, then the
   * device simulators. `onSimulator` sees each simulator before it sends anything.
   */
  static async start(options: DemoSiteOptions, onSimulator: (kind: DemoSimulatorKind, sim: RunningSimulator) => void = () => undefined): Promise<DemoSite> {
    const ownDir = options.dir === undefined;
    const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'hoichan-demo-site-')));
    await mkdir(join(dir, 'pki'), { recursive: true });
    const stops: Array<() => Promise<unknown>> = [];
    if (ownDir) stops.push(() => rm(dir, { recursive: true, force: true }));
    const simulators = new Map<DemoSimulatorKind, RunningSimulator>();
    try {
      const pairs: PtyPair[] = [];
      for (const name of ['cyton', 'cms50']) {
        const pair = await startPtyPair(join(dir, `${name}-agent`), join(dir, `${name}-device`));
        pairs.push(pair);
        stops.push(() => pair.stop());
      }
      const layout: DemoLayout = {
        dir,
        hl7Port: await freePort(),
        opcuaPort: await freePort(),
        cyton: pairs[0]!,
        cms50: pairs[1]!,
      };
      const seed = String(options.seed ?? Date.now() % 100_000);
      const start = async (kind: DemoSimulatorKind, argv: string[]) => {
        const sim = await simulatorCommands.get(kind)!.start(argv);
        sim.on('error', (err) => log.warn({ simulator: kind, err: err.message }, 'simulator error'));
        onSimulator(kind, sim);
        simulators.set(kind, sim);
        stops.push(() => sim.stop());
      };
      // Servers first (the agent's OPC UA client connects to it), then the agent, then the device senders.
      await start('opcua', ['--port', String(layout.opcuaPort), '--host', '127.0.0.1', '--seed', seed, '--pki-dir', join(dir, 'pki', 'simulator'), '--numeric-interval-ms', String(options.opcuaNumericIntervalMs ?? 1000)]);
      // The engineer's one-time step for an OPC UA device: copy its certificate into the agent's PKI.
      const opcuaSim = simulators.get('opcua');
      if (!(opcuaSim instanceof OpcuaMonitorSimulator)) throw new Error('the opcua simulator command did not start an OpcuaMonitorSimulator');
      const trusted = join(agentPkiDir(layout), 'trusted', 'certs');
      await mkdir(trusted, { recursive: true });
      await copyFile(opcuaSim.certificateFile, join(trusted, 'demo-opcua-simulator.pem'));
      const config = agentConfigOf(parseSiteConfig(demoSiteConfig(options, layout), 'demo site config'));
      const agent = await SiteAgent.start(config);
      stops.push(() => agent.stop());
      await start('mindray-hl7', ['--port', String(layout.hl7Port), '--host', '127.0.0.1', '--interval-ms', String(options.hl7IntervalMs ?? 1000), '--seed', seed, '--nibp-every-ms', '60000']);
      await start('cyton', ['--path', layout.cyton.deviceEnd, '--seed', seed]);
      await start('cms50', ['--path', layout.cms50.deviceEnd, '--seed', seed]);
      if (options.ultrasound) {
        // The agent token opens only /uplink; the ingest is the HTTP API's and takes a site person's token.
        if (!options.ingestToken) throw new Error('the demo ultrasound needs ingestToken (a site token for the conference)');
        const ultrasound = new IngestSender({
          hubUrl: options.hubUrl,
          token: options.ingestToken ?? '',
          conferenceId: options.conferenceId,
          deviceId: 'bed1-ultrasound',
          displayName: 'Ultrasound (demo site)',
          source: 'ultrasound',
          codec: 'VP8',
          srtp: true,
        });
        ultrasound.on('error', (err) => log.warn({ err: err.message }, 'ultrasound ingest error'));
        await ultrasound.start();
        stops.push(() => ultrasound.stop());
      }
      const site = new DemoSite(agent, layout, simulators);
      site.#stops.push(...stops);
      return site;
    } catch (err) {
      for (const stop of stops.reverse()) await stop().catch(() => undefined);
      throw err;
    }
  }

  /** Stops only the simulators (the agent keeps running and drains). */
  async stopSimulators(): Promise<void> {
    for (const sim of this.simulators.values()) await sim.stop().catch(() => undefined);
  }

  async stop(): Promise<void> {
    // Simulators first so no device is mid-message when its driver goes, then agent, then transports and files.
    await this.stopSimulators();
    for (const stop of this.#stops.splice(0).reverse()) await stop().catch((err: Error) => log.warn({ err: err.message }, 'demo site stop step failed'));
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function agentPkiDir(layout: DemoLayout): string {
  return join(layout.dir, 'pki', 'agent');
}
