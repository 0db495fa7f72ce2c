import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  DataType,
  nodesets,
  OPCUACertificateManager,
  OPCUAServer,
  RegisterServerMethod,
  StatusCodes,
  type StatusCode,
  VariantArrayType,
  type UAVariable,
} from 'node-opcua';
import type { DeviceDriver, DeviceReadingBody, ReadingSink } from '../../src/devices/driver.js';
import type { DeviceStatus } from '../../src/devices/reading.js';

// Shared helpers for the OPC UA tests: an in-process server with a small
// address space, a sink that records readings, and polling waits.

/** One PKI tree per machine: creating certificates costs seconds only the first time. */
export const TEST_PKI_DIR = path.join(os.tmpdir(), 'hoichan-opcua-test-pki');
export const CLIENT_PKI_DIR = path.join(TEST_PKI_DIR, 'client');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export interface TestServer {
  server: OPCUAServer;
  endpoint: string;
  variables: Map<string, UAVariable>;
  set(nodeId: string, dataType: DataType, value: unknown, sourceTime: Date, status?: StatusCode): void;
  stop(): Promise<void>;
}

export interface TestVariable {
  /** String id in namespace 1, e.g. 'Monitor.HR' -> ns=1;s=Monitor.HR */
  name: string;
  dataType: 'Double' | 'Float' | 'Int32' | 'Int64';
  array?: boolean;
}

export const DEFAULT_TEST_VARIABLES: TestVariable[] = [
  { name: 'Monitor.HR', dataType: 'Double' },
  { name: 'Monitor.SpO2', dataType: 'Int32' },
  { name: 'Monitor.Temp', dataType: 'Int32' },
  { name: 'Monitor.ECG', dataType: 'Double', array: true },
];

export async function startTestServer(port: number, variables: TestVariable[] = DEFAULT_TEST_VARIABLES): Promise<TestServer> {
  const server = new OPCUAServer({
    port,
    host: '127.0.0.1',
    hostname: '127.0.0.1',
    skipOwnNamespace: true,
    nodeset_filename: [nodesets.standard],
    registerServerMethod: RegisterServerMethod.HIDDEN,
    serverCertificateManager: new OPCUACertificateManager({ rootFolder: path.join(TEST_PKI_DIR, 'server'), automaticallyAcceptUnknownCertificate: true }),
    userCertificateManager: new OPCUACertificateManager({ rootFolder: path.join(TEST_PKI_DIR, 'user'), automaticallyAcceptUnknownCertificate: true }),
    userManager: { isValidUser: (name: string, password: string) => name === 'nurse' && password === 's3cret' },
  });
  await server.initialize();
  const addressSpace = server.engine.addressSpace!;
  const ns = addressSpace.registerNamespace('urn:hoichan:test');
  const monitor = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: 'Monitor', nodeId: 's=Monitor' });
  const map = new Map<string, UAVariable>();
  for (const v of variables) {
    const variable = ns.addVariable({
      componentOf: monitor,
      browseName: v.name.replace('Monitor.', ''),
      nodeId: `s=${v.name}`,
      dataType: v.dataType,
      ...(v.array ? { valueRank: 1 } : {}),
    });
    map.set(`ns=1;s=${v.name}`, variable);
  }
  await server.start();
  return {
    server,
    endpoint: `opc.tcp://127.0.0.1:${port}`,
    variables: map,
    set(nodeId, dataType, value, sourceTime, status = StatusCodes.Good) {
      const variable = map.get(nodeId);
      if (!variable) throw new Error(`no test variable ${nodeId}`);
      const arrayType = ArrayBuffer.isView(value) || Array.isArray(value) ? VariantArrayType.Array : VariantArrayType.Scalar;
      variable.setValueFromSource({ dataType, arrayType, value }, status, sourceTime);
    },
    stop: () => server.shutdown(0),
  };
}

export class RecordingSink implements ReadingSink {
  readonly readings: DeviceReadingBody[] = [];
  async accept(readings: DeviceReadingBody[]): Promise<void> {
    this.readings.push(...readings);
  }
  of(code: string): DeviceReadingBody[] {
    return this.readings.filter((r) => r.code === code);
  }
}

export async function waitFor<T>(what: string | (() => string), probe: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export async function waitForStatus(driver: DeviceDriver, deviceId: string, status: DeviceStatus, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => `${deviceId} ${status} (now ${JSON.stringify(driver.statusOf(deviceId))})`, () => driver.statusOf(deviceId).status === status, timeoutMs);
}
