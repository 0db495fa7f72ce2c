// Serial device drivers (OpenBCI Cyton, Contec CMS50D+) and their simulators.
import type { DeviceDriver, ReadingSink } from '../driver.js';
import { cms50DeviceConfigSchema, type Cms50DeviceConfigInput } from './cms50/config.js';
import { Cms50Driver } from './cms50/driver.js';
import { cytonDeviceConfigSchema, type CytonDeviceConfigInput } from './cyton/config.js';
import { CytonDriver } from './cyton/driver.js';

export { cytonDeviceConfigSchema, cytonMillivoltsPerCount, type CytonDeviceConfig, type CytonDeviceConfigInput } from './cyton/config.js';
export { cms50DeviceConfigSchema, type Cms50DeviceConfig, type Cms50DeviceConfigInput } from './cms50/config.js';
export { CMS50_CODES, CMS50_UNITS } from './cms50/codes.js';
export { CytonDriver } from './cyton/driver.js';
export { Cms50Driver } from './cms50/driver.js';
export { SerialDeviceDriver } from './serial-driver.js';
export { cytonSimulator } from './cyton/simulator.js';
export { cms50Simulator } from './cms50/simulator.js';

/** A Cyton driver for one board; settings are validated (throws a ZodError when invalid). */
export function createCytonDriver(deviceId: string, settings: CytonDeviceConfigInput, sink: ReadingSink): DeviceDriver {
  return new CytonDriver(deviceId, cytonDeviceConfigSchema.parse(settings), sink);
}

/** A CMS50D+ driver for one oximeter; settings are validated (throws a ZodError when invalid). */
export function createCms50Driver(deviceId: string, settings: Cms50DeviceConfigInput, sink: ReadingSink): DeviceDriver {
  return new Cms50Driver(deviceId, cms50DeviceConfigSchema.parse(settings), sink);
}
