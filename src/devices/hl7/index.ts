export { hl7DeviceConfigSchema, type Hl7DeviceConfig, type ResolvedHl7DeviceConfig } from './config.js';
export { createHl7Driver, Hl7Driver, type Hl7DeviceEntry } from './driver.js';
