// The site agent: the site's device drivers write into the durable journal
// (so a device is acknowledged only once its readings are on disk), and the
// uplink carries the journal to the hub. docs/AGENT.md is the operator's guide.

import type { AcceptOptions, AcceptResult, ReadingSink, DeviceReadingBody } from '../devices/driver.js';
import { DeviceRegistry, loadDriverFactories, protocolsOf, type DriverFactories } from '../devices/registry.js';
import { Journal, readJournalKeyFile } from './journal/index.js';
import { createLogger, type Logger } from '../common/logger.js';
import type { AgentConfig } from './config.js';
import type { UplinkClient } from './uplink/UplinkClient.js';

export interface SiteAgentOptions {
  factories?: DriverFactories;
  logger?: Logger;
}

export class SiteAgent {
  readonly #log: Logger;

  private constructor(
    readonly config: AgentConfig,
    readonly journal: Journal,
    readonly registry: DeviceRegistry,
    readonly uplink: UplinkClient,
    log: Logger,
  ) {
    this.#log = log;
  }

  static async start(config: AgentConfig, options: SiteAgentOptions = {}): Promise<SiteAgent> {
    const log = options.logger ?? createLogger('agent', { siteId: config.site.siteId });
    const { dir, fsync, fsyncIntervalMs, maxBytes, segmentBytes, dedup, encryptionKeyFile } = config.journal;
    // The uplink's module (socket.io-client) loads while the drivers load and start: start-up to
    // "ports open" is the serial devices' gap after every restart, and readings taken before the
    // uplink exists wait in the journal, which the uplink reads from on connect anyway.
    const uplinkModule = import('./uplink/UplinkClient.js');
    uplinkModule.catch(() => undefined); // awaited below; an early return must not leave it unhandled
    const encryptionKey = encryptionKeyFile === undefined ? undefined : await readJournalKeyFile(encryptionKeyFile);
    const journal = await Journal.open({ dir, fsync, fsyncIntervalMs, maxBytes, segmentBytes, dedup, ...(encryptionKey ? { encryptionKey } : {}) });
    let uplink: UplinkClient | undefined;
    // Drivers ack their devices when accept() resolves, i.e. once the journal has the readings on disk.
    // A keyed message (HL7) the journal's delivery ledger already holds, from before a restart too,
    // is answered { duplicate: true } with nothing written or offered.
    const sink: ReadingSink = {
      async accept(bodies: DeviceReadingBody[], options?: AcceptOptions): Promise<AcceptResult> {
        if (options?.dedupKey === undefined) {
          uplink?.offer(await journal.append(bodies));
          return { duplicate: false };
        }
        const result = await journal.appendOnce(bodies, options.dedupKey);
        if (result.duplicateOf) {
          log.info({ seqs: result.duplicateOf.ranges, takenAt: result.duplicateOf.at }, 'resend of a message already journaled: acknowledged, not delivered again');
          return { duplicate: true };
        }
        uplink?.offer(result.readings);
        return { duplicate: false };
      },
    };
    let registry: DeviceRegistry;
    try {
      // Only the protocols configured: no node-opcua without an OPC UA device (agent start-up is the serial gap).
      registry = new DeviceRegistry(config.site, sink, options.factories ?? (await loadDriverFactories(protocolsOf(config.site))));
    } catch (err) {
      await journal.close();
      throw err;
    }
    registry.on('status', (info) => {
      log.info({ deviceId: info.deviceId, status: info.status, reason: info.reason }, 'device status');
      uplink?.statusChanged();
    });
    journal.on('dropped', (deviceId, range) => log.warn({ deviceId, ...range }, 'journal cap dropped waveforms; the hub gets a gap notice'));
    await registry.start();
    let UplinkClientClass: typeof UplinkClient;
    try {
      UplinkClientClass = (await uplinkModule).UplinkClient;
    } catch (err) {
      await registry.stop();
      await journal.close();
      throw err;
    }
    uplink = new UplinkClientClass({
      siteId: config.site.siteId,
      hub: config.hub,
      journal,
      devices: () => registry.devices(),
      parseErrors: () => {
        const totals: Record<string, number> = {};
        for (const entry of registry.counters()) totals[entry.protocol] = (totals[entry.protocol] ?? 0) + entry.counters.framesRejected;
        return totals;
      },
      logger: log.child({ component: 'uplink' }),
    });
    const agent = new SiteAgent(config, journal, registry, uplink, log);
    uplink.start();
    log.info({ devices: registry.devices().length, journal: dir, hub: config.hub.url }, 'site agent started');
    return agent;
  }

  async stop(): Promise<void> {
    await this.registry.stop();
    await this.uplink.stop();
    await this.journal.close();
    this.#log.info('site agent stopped');
  }
}
