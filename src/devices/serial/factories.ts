// Serial driver factories, apart from serial/index.ts so that an agent loading
// its serial drivers loads only the two drivers and their configs.

import type { DeviceDriver, ReadingSink } from '../driver.js';
import { cms50DeviceConfigSchema, type Cms50DeviceConfigInput } from './cms50/config.js';
import { Cms50Driver } from './cms50/driver.js';
import { cytonDeviceConfigSchema, type CytonDeviceConfigInput } from './cyton/config.js';
import { CytonDriver } from './cyton/driver.js';

/** A Cyton driver for one board; settings are validated (throws a ZodError when invalid). */
export function createCytonDriver(deviceId: string, settings: CytonDeviceConfigInput, sink: ReadingSink): DeviceDriver {
  return new CytonDriver(deviceId, cytonDeviceConfigSchema.parse(settings), sink);
}

/** A CMS50D+ driver for one oximeter; settings are validated (throws a ZodError when invalid). */
export function createCms50Driver(deviceId: string, settings: Cms50DeviceConfigInput, sink: ReadingSink): DeviceDriver {
  return new Cms50Driver(deviceId, cms50DeviceConfigSchema.parse(settings), sink);
}
