import { EventEmitter } from 'node:events';
import { createLogger } from '../common/logger.js';
import type { DeviceDriver, DriverCounters, ReadingSink } from './driver.js';
import type { Hl7DeviceConfig } from './hl7/config.js';
import type { OpcuaDeviceConfig } from './opcua/config.js';
import type { DeviceInfo } from './reading.js';
import type { Cms50DeviceConfigInput } from './serial/cms50/config.js';
import type { CytonDeviceConfigInput } from './serial/cyton/config.js';
import { DEVICE_PROTOCOLS, type DeviceProtocol, type SiteConfig, type SiteDevice } from './siteConfig.js';

// The site's devices, built from the validated site config: one driver per
// connection (HL7 server-mode devices sharing a host:port share one listener),
// started and stopped together, each device's status and channels readable as
// the DeviceInfo the hub shows.

/** How drivers are made; tests swap in fakes for protocols they do not exercise. */
export interface DriverFactories {
  hl7(devices: Array<{ deviceId: string; settings: Hl7DeviceConfig }>, sink: ReadingSink): DeviceDriver;
  cyton(deviceId: string, settings: CytonDeviceConfigInput, sink: ReadingSink): DeviceDriver;
  cms50(deviceId: string, settings: Cms50DeviceConfigInput, sink: ReadingSink): DeviceDriver;
  opcua(deviceId: string, settings: OpcuaDeviceConfig, sink: ReadingSink): DeviceDriver;
}

/**
 * The real drivers of the given protocols (default: all), each protocol's
 * module imported only when asked for: an agent with no OPC UA device never
 * loads node-opcua (~2-9 s of start-up on a busy machine, docs/PERFORMANCE.md),
 * one with no serial device never loads serialport. Asking a returned factory
 * for a protocol that was not loaded throws.
 */
export async function loadDriverFactories(protocols: Iterable<DeviceProtocol> = DEVICE_PROTOCOLS): Promise<DriverFactories> {
  const wanted = new Set(protocols);
  const missing = (protocol: DeviceProtocol) => () => {
    throw new Error(`the ${protocol} driver was not loaded (no ${protocol} device in the config it was loaded for)`);
  };
  const [hl7, serial, opcua] = await Promise.all([
    wanted.has('hl7-mllp') ? import('./hl7/driver.js') : undefined,
    wanted.has('cyton') || wanted.has('cms50') ? import('./serial/factories.js') : undefined,
    wanted.has('opcua') ? import('./opcua/driver.js') : undefined,
  ]);
  return {
    hl7: hl7?.createHl7Driver ?? missing('hl7-mllp'),
    cyton: wanted.has('cyton') && serial ? serial.createCytonDriver : missing('cyton'),
    cms50: wanted.has('cms50') && serial ? serial.createCms50Driver : missing('cms50'),
    opcua: opcua?.createOpcuaDriver ?? missing('opcua'),
  };
}

/** The protocols a site config's devices use. */
export function protocolsOf(config: SiteConfig): Set<DeviceProtocol> {
  return new Set(config.devices.map((d) => d.protocol));
}

export interface DriverCountersEntry {
  /** e.g. 'hl7-mllp server 127.0.0.1:4601', 'opcua bedside-opcua' */
  driver: string;
  protocol: DeviceProtocol;
  deviceIds: string[];
  counters: DriverCounters;
}

export interface DeviceRegistryEvents {
  /** Any device's status (or reason) changed. */
  status: [DeviceInfo];
}

interface RegisteredDriver {
  label: string;
  protocol: DeviceProtocol;
  driver: DeviceDriver;
}

interface RegisteredDevice {
  device: SiteDevice;
  conferenceId: string;
  driver: DeviceDriver;
}

export class DeviceRegistry extends EventEmitter<DeviceRegistryEvents> {
  readonly #log = createLogger('device-registry');
  readonly #drivers: RegisteredDriver[] = [];
  readonly #devices = new Map<string, RegisteredDevice>();
  #running = false;

  /** Loads the drivers the config's devices need (only those), then builds the registry. */
  static async create(config: SiteConfig, sink: ReadingSink): Promise<DeviceRegistry> {
    return new DeviceRegistry(config, sink, await loadDriverFactories(protocolsOf(config)));
  }

  /** Builds every driver; throws if a driver rejects its settings (a config error). */
  constructor(config: SiteConfig, sink: ReadingSink, factories: DriverFactories) {
    super();
    const driverOf = new Map<string, DeviceDriver>();
    for (const group of groupByConnection(config.devices)) {
      const driver = makeDriver(group, sink, factories);
      this.#drivers.push({ label: group.label, protocol: group.protocol, driver });
      for (const device of group.devices) driverOf.set(device.id, driver);
      driver.on('status', (deviceId) => {
        const info = this.device(deviceId);
        if (info) this.emit('status', info);
      });
    }
    for (const device of config.devices) {
      const driver = driverOf.get(device.id) as DeviceDriver;
      this.#devices.set(device.id, { device, conferenceId: device.conferenceId ?? config.conferenceId, driver });
    }
  }

  /** Starts all drivers. A driver that fails to start is logged; its devices stay offline. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    await Promise.all(
      this.#drivers.map(async ({ label, driver }) => {
        try {
          await driver.start();
        } catch (err) {
          this.#log.error({ driver: label, err: err instanceof Error ? err.message : String(err) }, 'device driver failed to start');
        }
      }),
    );
    this.#log.info({ drivers: this.#drivers.length, devices: this.#devices.size }, 'device drivers started');
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    await Promise.all(
      this.#drivers.map(async ({ label, driver }) => {
        try {
          await driver.stop();
        } catch (err) {
          this.#log.warn({ driver: label, err: err instanceof Error ? err.message : String(err) }, 'device driver did not stop cleanly');
        }
      }),
    );
  }

  /** Every configured device, in config order. */
  devices(): DeviceInfo[] {
    return [...this.#devices.keys()].map((id) => this.device(id) as DeviceInfo);
  }

  device(deviceId: string): DeviceInfo | undefined {
    const entry = this.#devices.get(deviceId);
    if (!entry) return undefined;
    const { device, conferenceId, driver } = entry;
    const { status, reason } = driver.statusOf(deviceId);
    return {
      deviceId,
      conferenceId,
      type: device.type,
      model: device.model,
      protocol: device.protocol,
      status,
      ...(reason !== undefined ? { reason } : {}),
      channels: driver.channelsOf(deviceId),
    };
  }

  /** Counters per driver (one driver may serve several HL7 devices). */
  counters(): DriverCountersEntry[] {
    return this.#drivers.map(({ label, protocol, driver }) => ({
      driver: label,
      protocol,
      deviceIds: [...driver.deviceIds],
      counters: { ...driver.counters },
    }));
  }
}

interface DriverGroup {
  label: string;
  protocol: DeviceProtocol;
  devices: SiteDevice[];
}

/** One group per connection: HL7 server-mode devices on the same host:port share a listener. */
export function groupByConnection(devices: readonly SiteDevice[]): DriverGroup[] {
  const groups: DriverGroup[] = [];
  const listeners = new Map<string, DriverGroup>();
  for (const device of devices) {
    if (device.protocol === 'hl7-mllp' && device.settings.mode === 'server') {
      const key = `${device.settings.host}:${device.settings.port}`;
      const shared = listeners.get(key);
      if (shared) {
        shared.devices.push(device);
        continue;
      }
      const group: DriverGroup = { label: `hl7-mllp server ${key}`, protocol: 'hl7-mllp', devices: [device] };
      listeners.set(key, group);
      groups.push(group);
    } else {
      groups.push({ label: `${device.protocol} ${device.id}`, protocol: device.protocol, devices: [device] });
    }
  }
  return groups;
}

function makeDriver(group: DriverGroup, sink: ReadingSink, factories: DriverFactories): DeviceDriver {
  const hl7: Array<{ deviceId: string; settings: Hl7DeviceConfig }> = [];
  for (const device of group.devices) {
    if (device.protocol === 'hl7-mllp') hl7.push({ deviceId: device.id, settings: device.settings });
  }
  if (hl7.length > 0) return factories.hl7(hl7, sink);
  const [device] = group.devices;
  switch (device?.protocol) {
    case 'cyton':
      return factories.cyton(device.id, device.settings, sink);
    case 'cms50':
      return factories.cms50(device.id, device.settings, sink);
    case 'opcua':
      return factories.opcua(device.id, device.settings, sink);
    default:
      throw new Error(`no driver for group ${group.label}`);
  }
}
