// OPC UA security defaults against the simulator over loopback: a client with
// default settings signs and encrypts, refuses a server it does not trust, and
// connects once an engineer copies the server's certificate into its PKI.

import { expect } from 'chai';
import { copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { createOpcuaDriver, opcuaDeviceConfigSchema } from '../../src/devices/opcua/index.js';
import { opcuaSimulator, OpcuaMonitorSimulator, SIMULATOR_MAPPINGS } from '../../src/sim/opcua/simulator.js';
import type { DeviceDriver } from '../../src/devices/driver.js';
import type { NumericBody } from '../../src/devices/reading.js';
import { freePort, RecordingSink, TEST_PKI_DIR, waitFor, waitForStatus } from './opcuaFixtures.js';

const DEVICE = 'secure-monitor';
/**
 * Its own client PKI: the other OPC UA tests accept unknown servers into
 * theirs. own/ (the client certificate, seconds to create) is kept across runs;
 * trusted/ and rejected/ are emptied before each test.
 */
const STRICT_PKI_DIR = path.join(TEST_PKI_DIR, 'client-strict');

describe('OPC UA security defaults (SignAndEncrypt, explicit server trust)', function () {
  this.timeout(60_000);
  let simulator: OpcuaMonitorSimulator | undefined;
  let driver: DeviceDriver | undefined;
  let port = 0;

  beforeEach(async () => {
    await rm(path.join(STRICT_PKI_DIR, 'trusted'), { recursive: true, force: true });
    await rm(path.join(STRICT_PKI_DIR, 'rejected'), { recursive: true, force: true });
    port = await freePort();
    const running = await opcuaSimulator.start(['--port', String(port), '--host', '127.0.0.1', '--seed', '3', '--numeric-interval-ms', '200', '--pki-dir', path.join(TEST_PKI_DIR, 'simulator')]);
    expect(running).to.be.instanceOf(OpcuaMonitorSimulator);
    simulator = running as OpcuaMonitorSimulator;
  });

  afterEach(async () => {
    await driver?.stop();
    await simulator?.stop();
    driver = undefined;
    simulator = undefined;
  });

  /** Only what a site config must say: where, which PKI, what to read. */
  function defaults() {
    return { endpoint: `opc.tcp://127.0.0.1:${port}`, reconnectMaxDelayMs: 500, pkiDir: STRICT_PKI_DIR, mappings: SIMULATOR_MAPPINGS };
  }

  it('defaults to SignAndEncrypt with Basic256Sha256 and no trust on first use', () => {
    const settings = opcuaDeviceConfigSchema.parse(defaults());
    expect(settings).to.include({ securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256', acceptUnknownServerCertificate: false });
    expect(opcuaDeviceConfigSchema.parse({ ...defaults(), securityMode: 'None' })).to.include({ securityMode: 'None', securityPolicy: 'None' });
    expect(opcuaDeviceConfigSchema.parse({ ...defaults(), securityPolicy: 'Aes128_Sha256_RsaOaep' })).to.include({ securityMode: 'SignAndEncrypt', securityPolicy: 'Aes128_Sha256_RsaOaep' });
    const clash = opcuaDeviceConfigSchema.safeParse({ ...defaults(), securityPolicy: 'None' });
    expect(clash.success).to.equal(false);
    expect(clash.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).to.deep.equal(['securityPolicy: Must not be "None" when securityMode is "SignAndEncrypt"']);
  });

  it('refuses a server whose certificate it does not trust: offline with the reason, no reading', async () => {
    const sink = new RecordingSink();
    driver = createOpcuaDriver(DEVICE, defaults(), sink);
    await driver.start();
    await waitFor('an untrusted-certificate status', () => {
      const status = driver!.statusOf(DEVICE);
      return status.status === 'offline' && /certificate/i.test(status.reason ?? '') ? status : undefined;
    });
    const status = driver.statusOf(DEVICE);
    expect(status.reason).to.match(/server certificate (is )?not trusted/i);
    // node-opcua files the refused certificate where an engineer can inspect it.
    const rejected = await readdir(path.join(STRICT_PKI_DIR, 'rejected')).catch(() => [] as string[]);
    expect(rejected.length).to.be.greaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(driver.statusOf(DEVICE).status).to.equal('offline');
    expect(sink.readings).to.have.length(0);
    expect(simulator!.secureChannels.filter((c) => c.securityMode !== 'None')).to.have.length(0);
  });

  it('connects over SignAndEncrypt once the server certificate is copied into pkiDir/trusted/certs', async () => {
    // What an engineer does: copy the device's certificate file into the trusted folder.
    await mkdir(path.join(STRICT_PKI_DIR, 'trusted', 'certs'), { recursive: true });
    await copyFile(simulator!.certificateFile, path.join(STRICT_PKI_DIR, 'trusted', 'certs', 'simulator.pem'));
    const sink = new RecordingSink();
    driver = createOpcuaDriver(DEVICE, defaults(), sink);
    await driver.start();
    await waitForStatus(driver, DEVICE, 'online', 30_000);
    const hr = await waitFor('a heart rate over the secure channel', () => (sink.of('MDC_ECG_HEART_RATE') as NumericBody[])[0]);
    expect(hr.value).to.be.a('number');
    expect(simulator!.secureChannels).to.deep.include({ securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256' });
    expect(simulator!.secureChannels.filter((c) => c.securityMode === 'None')).to.have.length(0);
  });
});
