// Serial device drivers (OpenBCI Cyton, Contec CMS50D+). Their simulators live in src/sim/serial/.
export { createCms50Driver, createCytonDriver } from './factories.js';

export { cytonDeviceConfigSchema, cytonMillivoltsPerCount, type CytonDeviceConfig, type CytonDeviceConfigInput } from './cyton/config.js';
export { cms50DeviceConfigSchema, type Cms50DeviceConfig, type Cms50DeviceConfigInput } from './cms50/config.js';
export { CMS50_CODES, CMS50_UNITS } from './cms50/codes.js';
export { CytonDriver } from './cyton/driver.js';
export { Cms50Driver } from './cms50/driver.js';
export { SerialDeviceDriver } from './serialDriver.js';
