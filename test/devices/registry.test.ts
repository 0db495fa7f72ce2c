import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { DeviceDriver, type ReadingSink } from '../../src/devices/driver.js';
import type { DeviceInfo } from '../../src/devices/reading.js';
import { DeviceRegistry, type DriverFactories } from '../../src/devices/registry.js';
import { loadSiteConfig, parseSiteConfig, SiteConfigError, type SiteConfig } from '../../src/devices/siteConfig.js';
import { CLIENT_PKI_DIR, freePort, RecordingSink, startTestServer, waitFor, type TestServer } from './opcuaFixtures.js';

// dist/test/devices -> repo root
const EXAMPLE = fileURLToPath(new URL('../../../config/site.example.json', import.meta.url));

/** Stands in for drivers whose hardware the test does not have. */
class FakeDriver extends DeviceDriver {
  started = false;
  constructor(
    readonly deviceIds: readonly string[],
    sink: ReadingSink,
  ) {
    super(sink);
  }
  async start(): Promise<void> {
    this.started = true;
    for (const id of this.deviceIds) this.setStatus(id, { status: 'offline', reason: 'fake: no device' });
  }
  async stop(): Promise<void> {
    this.started = false;
  }
  goOnline(deviceId: string): void {
    this.declareChannel(deviceId, { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', kind: 'numeric' });
    this.setStatus(deviceId, { status: 'online' });
  }
}

function fakeFactories() {
  const made: Array<{ protocol: string; ids: string[]; driver: FakeDriver }> = [];
  const make = (protocol: string, ids: string[], sink: ReadingSink) => {
    const driver = new FakeDriver(ids, sink);
    made.push({ protocol, ids, driver });
    return driver;
  };
  const factories: DriverFactories = {
    hl7: (devices, sink) => make('hl7-mllp', devices.map((d) => d.deviceId), sink),
    cyton: (id, _settings, sink) => make('cyton', [id], sink),
    cms50: (id, _settings, sink) => make('cms50', [id], sink),
    opcua: (id, _settings, sink) => make('opcua', [id], sink),
  };
  return { factories, made };
}

function problemsOf(input: unknown): string[] {
  try {
    parseSiteConfig(input, 'test.json');
  } catch (err) {
    if (err instanceof SiteConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('site config', () => {
  it('loads and validates config/site.example.json', async () => {
    const config = await loadSiteConfig(EXAMPLE);
    expect(config.devices.map((d) => [d.id, d.protocol, d.type])).to.deep.equal([
      ['bed1-mindray', 'hl7-mllp', 'vitals'],
      ['bed1-cyton-ecg', 'cyton', 'ecg'],
      ['bed1-cms50', 'cms50', 'spo2'],
      ['bed2-opcua-monitor', 'opcua', 'vitals'],
    ]);
    const [hl7, cyton, cms50, opcua] = config.devices;
    expect(hl7?.protocol === 'hl7-mllp' && hl7.settings).to.deep.include({ mode: 'server', host: '127.0.0.1', port: 4601 });
    expect(cyton?.protocol === 'cyton' && cyton.settings.path).to.equal('/tmp/hoichan-demo/cyton-agent');
    expect(cms50?.protocol === 'cms50' && cms50.settings).to.deep.include({ path: '/tmp/hoichan-demo/cms50-agent', baudRate: 19200 });
    expect(opcua?.protocol === 'opcua' && opcua.settings).to.deep.include({ endpoint: 'opc.tcp://127.0.0.1:4840', securityMode: 'None' });
    expect(config.hub).to.deep.include({ url: 'http://127.0.0.1:3000' });
    expect(config.journal).to.deep.include({ dir: '/tmp/hoichan-demo/journal' });
  });

  it('names the bad key in each error', async () => {
    const good = JSON.parse(JSON.stringify(await loadSiteConfig(EXAMPLE))) as SiteConfig;
    const withDevice = (index: number, patch: (d: Record<string, unknown>) => void) => {
      const copy = JSON.parse(JSON.stringify(good)) as { devices: Record<string, unknown>[] };
      patch(copy.devices[index]!);
      return copy;
    };
    expect(problemsOf(withDevice(0, (d) => ((d.settings as Record<string, unknown>).port = '4601')))).to.deep.equal([
      'devices[0].settings.port: Expected number, received string',
    ]);
    expect(problemsOf(withDevice(2, (d) => (d.protocol = 'usb')))).to.deep.equal([
      "devices[2].protocol: Expected one of 'hl7-mllp', 'cyton', 'cms50', 'opcua'",
    ]);
    expect(problemsOf(withDevice(1, (d) => (d.type = 'eeg')))[0]).to.match(/^devices\[1\]\.type: Invalid enum value/);
    expect(problemsOf(withDevice(3, (d) => ((d.settings as { mappings: Record<string, unknown> }).mappings['ns=1;s=Monitor.HR'] = { code: 'MDC_ECG_HEART_RATE' })))).to.deep.equal([
      'devices[3].settings.mappings["ns=1;s=Monitor.HR"].unit: Required',
    ]);
    expect(problemsOf(withDevice(1, (d) => (d.id = 'bed1-mindray')))).to.deep.equal(['devices[1].id: Duplicate device id "bed1-mindray" (also devices[0])']);
    const { siteId: _omit, ...noSite } = good;
    expect(problemsOf(noSite)).to.deep.equal(['siteId: Required']);
    expect(() => parseSiteConfig({ ...good, devices: 'none' }, 'x.json')).to.throw(SiteConfigError, /invalid site config x\.json:\n  devices: Expected array/);
  });
});

describe('DeviceRegistry', function () {
  this.timeout(30_000);
  let registry: DeviceRegistry | undefined;
  let server: TestServer | undefined;

  afterEach(async () => {
    await registry?.stop();
    await server?.stop();
    registry = undefined;
    server = undefined;
  });

  it('builds one driver per connection and shares one HL7 listener per host:port', async () => {
    const config = await loadSiteConfig(EXAMPLE);
    const second = JSON.parse(JSON.stringify(config.devices[0])) as SiteConfig['devices'][number];
    second.id = 'bed3-mindray';
    second.conferenceId = 'other-conference';
    config.devices.push(second);
    const { factories, made } = fakeFactories();
    registry = new DeviceRegistry(config, new RecordingSink(), factories);
    expect(made.map((m) => [m.protocol, m.ids])).to.deep.equal([
      ['hl7-mllp', ['bed1-mindray', 'bed3-mindray']],
      ['cyton', ['bed1-cyton-ecg']],
      ['cms50', ['bed1-cms50']],
      ['opcua', ['bed2-opcua-monitor']],
    ]);

    const events: DeviceInfo[] = [];
    registry.on('status', (info) => events.push(info));
    await registry.start();
    expect(made.every((m) => m.driver.started)).to.equal(true);
    expect(registry.devices().map((d) => [d.deviceId, d.conferenceId, d.status])).to.deep.equal([
      ['bed1-mindray', 'demo-case-conference', 'offline'],
      ['bed1-cyton-ecg', 'demo-case-conference', 'offline'],
      ['bed1-cms50', 'demo-case-conference', 'offline'],
      ['bed2-opcua-monitor', 'demo-case-conference', 'offline'],
      ['bed3-mindray', 'other-conference', 'offline'],
    ]);

    made[2]!.driver.goOnline('bed1-cms50');
    expect(events.at(-1)).to.deep.equal({
      deviceId: 'bed1-cms50', conferenceId: 'demo-case-conference', type: 'spo2', model: 'Contec CMS50D+', protocol: 'cms50',
      status: 'online', channels: [{ code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', kind: 'numeric' }],
    });
    expect(registry.counters().map((c) => [c.driver, c.deviceIds])).to.deep.equal([
      ['hl7-mllp server 127.0.0.1:4601', ['bed1-mindray', 'bed3-mindray']],
      ['cyton bed1-cyton-ecg', ['bed1-cyton-ecg']],
      ['cms50 bed1-cms50', ['bed1-cms50']],
      ['opcua bed2-opcua-monitor', ['bed2-opcua-monitor']],
    ]);
    await registry.stop();
    expect(made.some((m) => m.driver.started)).to.equal(false);
  });

  it('builds the real drivers for the example site without starting them', async () => {
    registry = await DeviceRegistry.create(await loadSiteConfig(EXAMPLE), new RecordingSink());
    expect(registry.devices().map((d) => [d.deviceId, d.protocol, d.status])).to.deep.equal([
      ['bed1-mindray', 'hl7-mllp', 'offline'],
      ['bed1-cyton-ecg', 'cyton', 'offline'],
      ['bed1-cms50', 'cms50', 'offline'],
      ['bed2-opcua-monitor', 'opcua', 'offline'],
    ]);
    // Config-declared channels are known before any data (OPC UA mappings).
    expect(registry.device('bed2-opcua-monitor')?.channels).to.have.length(8);
  });

  it('reports the OPC UA device online with its channels against a real server', async () => {
    const port = await freePort();
    server = await startTestServer(port);
    const config = parseSiteConfig({
      siteId: 'test-site',
      conferenceId: 'conf-1',
      hub: { url: 'http://127.0.0.1:1' },
      journal: { dir: '/tmp/unused' },
      devices: [
        {
          id: 'opcua-1', type: 'vitals', model: 'test server', protocol: 'opcua',
          settings: {
            endpoint: server.endpoint, securityMode: 'None', publishingIntervalMs: 50, pkiDir: CLIENT_PKI_DIR,
            mappings: {
              'ns=1;s=Monitor.HR': { code: 'MDC_ECG_HEART_RATE', unit: '/min' },
              'ns=1;s=Monitor.ECG': { code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', kind: 'waveform', sampleRate: 500 },
            },
          },
        },
      ],
    });
    const sink = new RecordingSink();
    registry = await DeviceRegistry.create(config, sink);
    const events: DeviceInfo[] = [];
    registry.on('status', (info) => events.push(info));
    await registry.start();
    await waitFor('opcua-1 online', () => registry!.device('opcua-1')?.status === 'online');
    expect(registry.devices()).to.deep.equal([
      {
        deviceId: 'opcua-1', conferenceId: 'conf-1', type: 'vitals', model: 'test server', protocol: 'opcua', status: 'online',
        channels: [
          { code: 'MDC_ECG_HEART_RATE', unit: '/min', kind: 'numeric' },
          { code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', kind: 'waveform' },
        ],
      },
    ]);
    expect(events.map((e) => e.status)).to.include.members(['offline', 'online']);
    const [entry] = registry.counters();
    expect(entry).to.deep.include({ driver: 'opcua opcua-1', protocol: 'opcua', deviceIds: ['opcua-1'] });
  });
});
