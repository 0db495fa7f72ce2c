import { expect } from 'chai';
import { DataType, StatusCodes } from 'node-opcua';
import { createOpcuaDriver, opcuaDeviceConfigSchema, type OpcuaDeviceConfigInput } from '../../src/devices/opcua/index.js';
import type { DeviceDriver } from '../../src/devices/driver.js';
import type { NumericBody } from '../../src/devices/reading.js';
import { TcpProxy } from '../agent/uplink-helpers.js';
import type { OpcuaDriver } from '../../src/devices/opcua/driver.js';
import { CLIENT_PKI_DIR, freePort, RecordingSink, startTestServer, waitFor, waitForStatus, type TestServer } from './opcuaFixtures.js';

const DEVICE = 'icu-bed-3';

function settingsFor(endpoint: string, extra: Partial<OpcuaDeviceConfigInput> = {}) {
  return opcuaDeviceConfigSchema.parse({
    endpoint,
    // These tests are about subscriptions, not the channel (opcua-security.test.ts is).
    securityMode: 'None',
    publishingIntervalMs: 50,
    reconnectMaxDelayMs: 500,
    pkiDir: CLIENT_PKI_DIR,
    mappings: {
      'ns=1;s=Monitor.HR': { code: 'MDC_ECG_HEART_RATE', unit: '/min' },
      'ns=1;s=Monitor.SpO2': { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%' },
      // Device sends tenths of a degree.
      'ns=1;s=Monitor.Temp': { code: 'MDC_TEMP', unit: 'Cel', scale: 0.1 },
      'ns=1;s=Monitor.ECG': { code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', kind: 'waveform', sampleRate: 500 },
    },
    ...extra,
  });
}

describe('OPC UA driver against an in-process server', function () {
  this.timeout(30_000);
  let server: TestServer | undefined;
  let driver: DeviceDriver | undefined;

  afterEach(async () => {
    await driver?.stop();
    await server?.stop();
    driver = undefined;
    server = undefined;
  });

  it('turns scalars into numerics and arrays into waveform chunks with source timestamps', async () => {
    const port = await freePort();
    server = await startTestServer(port);
    const sink = new RecordingSink();
    driver = createOpcuaDriver(DEVICE, settingsFor(server.endpoint), sink);
    const before = Date.now();
    await driver.start();
    await waitForStatus(driver, DEVICE, 'online');

    const hrTime = new Date(Date.now() - 1500);
    const serverTime = Date.now();
    server.set('ns=1;s=Monitor.HR', DataType.Double, 72.5, hrTime);
    server.set('ns=1;s=Monitor.SpO2', DataType.Int32, 97, new Date(hrTime.getTime() + 1));
    server.set('ns=1;s=Monitor.Temp', DataType.Int32, 369, new Date(hrTime.getTime() + 2));
    const ecg = Array.from({ length: 50 }, (_, i) => Math.sin(i / 5));
    const lastSampleTime = new Date(hrTime.getTime() + 200);
    server.set('ns=1;s=Monitor.ECG', DataType.Double, new Float64Array(ecg), lastSampleTime);

    await waitFor('all four readings', () => sink.of('MDC_ECG_ELEC_POTL_II').length > 0 && sink.of('MDC_TEMP').length > 0 && sink.of('MDC_ECG_HEART_RATE').length > 0);
    const strip = ({ rt, ...rest }: { rt: number }) => {
      expect(rt).to.be.within(before, Date.now());
      expect(rt).to.be.at.least(serverTime);
      return rest;
    };
    expect(sink.of('MDC_ECG_HEART_RATE').map(strip)).to.deep.equal([
      { deviceId: DEVICE, kind: 'numeric', code: 'MDC_ECG_HEART_RATE', unit: '/min', t: hrTime.getTime(), value: 72.5 },
    ]);
    expect(sink.of('MDC_PULS_OXIM_SAT_O2').map(strip)).to.deep.equal([
      { deviceId: DEVICE, kind: 'numeric', code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', t: hrTime.getTime() + 1, value: 97 },
    ]);
    expect(sink.of('MDC_TEMP').map(strip)).to.deep.equal([
      { deviceId: DEVICE, kind: 'numeric', code: 'MDC_TEMP', unit: 'Cel', t: hrTime.getTime() + 2, value: 369 * 0.1 },
    ]);
    // Source time marks the last sample; the reading's t is the first one's: 49 periods of 2 ms earlier.
    expect(sink.of('MDC_ECG_ELEC_POTL_II').map(strip)).to.deep.equal([
      { deviceId: DEVICE, kind: 'waveform', code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', t: lastSampleTime.getTime() - 98, sampleRate: 500, samples: ecg },
    ]);
    expect(driver.channelsOf(DEVICE)).to.deep.equal([
      { code: 'MDC_ECG_HEART_RATE', unit: '/min', kind: 'numeric' },
      { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', kind: 'numeric' },
      { code: 'MDC_TEMP', unit: 'Cel', kind: 'numeric' },
      { code: 'MDC_ECG_ELEC_POTL_II', unit: 'mV', kind: 'waveform' },
    ]);
    expect(driver.counters.readingsEmitted).to.equal(4);
    expect(driver.counters.framesRejected).to.equal(0);
  });

  it('skips the value a server sends again after the connection is cut and re-established', async () => {
    const port = await freePort();
    server = await startTestServer(port);
    const proxy = await TcpProxy.start(port);
    try {
      const sink = new RecordingSink();
      const opcua = createOpcuaDriver(DEVICE, settingsFor(`opc.tcp://127.0.0.1:${proxy.port}`), sink) as OpcuaDriver;
      driver = opcua;
      await driver.start();
      await waitForStatus(driver, DEVICE, 'online');
      const t1 = Date.now() - 2000;
      server.set('ns=1;s=Monitor.HR', DataType.Double, 72, new Date(t1));
      await waitFor('the first HR', () => sink.of('MDC_ECG_HEART_RATE').length === 1);
      await proxy.cut();
      await waitForStatus(driver, DEVICE, 'offline', 20_000);
      await proxy.restore();
      await waitForStatus(driver, DEVICE, 'online', 20_000);
      // The re-established subscription's first notification is the node's current value: the same one.
      await waitFor('the repeated HR to be skipped', () => opcua.repeatedValuesSkipped >= 1, 20_000);
      const t2 = Date.now() - 1000;
      server.set('ns=1;s=Monitor.HR', DataType.Double, 75, new Date(t2));
      await waitFor('the next HR', () => (sink.of('MDC_ECG_HEART_RATE') as NumericBody[]).some((r) => r.value === 75));
      expect((sink.of('MDC_ECG_HEART_RATE') as NumericBody[]).map((r) => [r.t, r.value])).to.deep.equal([
        [t1, 72],
        [t2, 75],
      ]);
    } finally {
      await proxy.close();
    }
  });

  it('reports a rewrite of an unchanged value as a fresh reading', async () => {
    const port = await freePort();
    server = await startTestServer(port);
    const sink = new RecordingSink();
    driver = createOpcuaDriver(DEVICE, settingsFor(server.endpoint), sink);
    await driver.start();
    await waitForStatus(driver, DEVICE, 'online');
    const t0 = Date.now() - 3000;
    for (let i = 0; i < 3; i++) server.set('ns=1;s=Monitor.HR', DataType.Double, 60, new Date(t0 + i * 1000));
    const readings = await waitFor(
      () => `three HR readings, got ${JSON.stringify(sink.of('MDC_ECG_HEART_RATE'))}`,
      () => {
        const hr = sink.of('MDC_ECG_HEART_RATE') as NumericBody[];
        return hr.length >= 3 && hr;
      },
    );
    expect(readings.map((r) => [r.t, r.value])).to.deep.equal([
      [t0, 60],
      [t0 + 1000, 60],
      [t0 + 2000, 60],
    ]);
  });

  it('gives null values and degraded status on bad status codes, online again when good', async () => {
    const port = await freePort();
    server = await startTestServer(port);
    const sink = new RecordingSink();
    driver = createOpcuaDriver(DEVICE, settingsFor(server.endpoint), sink);
    await driver.start();
    await waitForStatus(driver, DEVICE, 'online');

    const t = Date.now();
    server.set('ns=1;s=Monitor.HR', DataType.Double, 0, new Date(t), StatusCodes.BadSensorFailure);
    server.set('ns=1;s=Monitor.ECG', DataType.Double, new Float64Array([1, 2]), new Date(t), StatusCodes.BadSensorFailure);
    await waitForStatus(driver, DEVICE, 'degraded');
    const hr = await waitFor('null HR', () => (sink.of('MDC_ECG_HEART_RATE') as NumericBody[]).find((r) => r.t === t));
    expect(hr.value).to.equal(null);
    expect(driver.statusOf(DEVICE).reason).to.include('ns=1;s=Monitor.HR').and.include('BadSensorFailure');
    await waitFor('bad ECG block rejected', () => driver!.counters.framesRejected === 1);
    expect(sink.of('MDC_ECG_ELEC_POTL_II')).to.have.length(0);

    server.set('ns=1;s=Monitor.HR', DataType.Double, 70, new Date(t + 1));
    server.set('ns=1;s=Monitor.ECG', DataType.Double, new Float64Array([1, 2]), new Date(t + 1));
    await waitForStatus(driver, DEVICE, 'online');
  });

  it('marks a configured nodeId that does not exist as degraded with a clear reason, and keeps the rest flowing', async () => {
    const port = await freePort();
    server = await startTestServer(port);
    const sink = new RecordingSink();
    const settings = settingsFor(server.endpoint);
    settings.mappings['ns=1;s=Monitor.NoSuchNode'] = { code: 'MDC_RESP_RATE', unit: '/min', kind: 'numeric' };
    driver = createOpcuaDriver(DEVICE, settings, sink);
    await driver.start();
    await waitForStatus(driver, DEVICE, 'degraded');
    expect(driver.statusOf(DEVICE).reason).to.equal('node ns=1;s=Monitor.NoSuchNode: BadNodeIdUnknown (0x80340000)');

    const t = Date.now();
    server.set('ns=1;s=Monitor.HR', DataType.Double, 88, new Date(t));
    await waitFor('HR still flowing', () => sink.of('MDC_ECG_HEART_RATE').some((r) => r.t === t));
    expect(driver.statusOf(DEVICE).status).to.equal('degraded');
  });

  it('goes offline when the server stops and re-subscribes to a new server on the same port', async () => {
    const port = await freePort();
    server = await startTestServer(port);
    const sink = new RecordingSink();
    driver = createOpcuaDriver(DEVICE, settingsFor(server.endpoint), sink);
    const statuses: string[] = [];
    driver.on('status', (_id, s) => statuses.push(s.status));
    await driver.start();
    await waitForStatus(driver, DEVICE, 'online');

    await server.stop();
    server = undefined;
    await waitForStatus(driver, DEVICE, 'offline');
    expect(driver.statusOf(DEVICE).reason).to.match(/connection lost/);

    server = await startTestServer(port);
    await waitForStatus(driver, DEVICE, 'online', 20_000);
    const t = Date.now();
    server.set('ns=1;s=Monitor.HR', DataType.Double, 101, new Date(t));
    await waitFor('HR from the new server', () => (sink.of('MDC_ECG_HEART_RATE') as NumericBody[]).some((r) => r.t === t && r.value === 101));
    expect(driver.counters.reconnects).to.be.at.least(1);
    const transitions = statuses.filter((s, i) => s !== statuses[i - 1]);
    expect(transitions).to.deep.equal(['offline', 'online', 'offline', 'online']);
  });

  it('waits offline for a server that is not there yet, and connects when it appears', async () => {
    const port = await freePort();
    const sink = new RecordingSink();
    driver = createOpcuaDriver(DEVICE, settingsFor(`opc.tcp://127.0.0.1:${port}`), sink);
    await driver.start(); // must not reject
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(driver.statusOf(DEVICE).status).to.equal('offline');
    server = await startTestServer(port);
    await waitForStatus(driver, DEVICE, 'online', 20_000);
  });

  it('stops cleanly while still trying to reach an absent server', async () => {
    const port = await freePort();
    driver = createOpcuaDriver(DEVICE, settingsFor(`opc.tcp://127.0.0.1:${port}`), new RecordingSink());
    await driver.start();
    await new Promise((resolve) => setTimeout(resolve, 400));
    const started = Date.now();
    await driver.stop();
    expect(Date.now() - started).to.be.below(5_000);
    expect(driver.statusOf(DEVICE)).to.deep.equal({ status: 'offline', reason: 'stopped' });
  });

  it('signs and encrypts with a user name token when configured', async () => {
    const port = await freePort();
    server = await startTestServer(port);
    const sink = new RecordingSink();
    driver = createOpcuaDriver(
      DEVICE,
      settingsFor(server.endpoint, {
        securityMode: 'SignAndEncrypt',
        securityPolicy: 'Basic256Sha256',
        username: 'nurse',
        password: 's3cret',
        acceptUnknownServerCertificate: true,
      }),
      sink,
    );
    await driver.start();
    await waitForStatus(driver, DEVICE, 'online', 20_000);
    const t = Date.now();
    server.set('ns=1;s=Monitor.HR', DataType.Double, 64, new Date(t));
    const hr = await waitFor('HR over a secure channel', () => (sink.of('MDC_ECG_HEART_RATE') as NumericBody[]).find((r) => r.t === t));
    expect(hr.value).to.equal(64);
  });
});
