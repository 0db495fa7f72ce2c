// OPC UA devices: driver (subscription over opc.tcp) and an independent monitor simulator.
export {
  opcuaDeviceConfigSchema,
  opcuaMappingSchema,
  type OpcuaDeviceConfig,
  type OpcuaDeviceConfigInput,
  type OpcuaMapping,
} from './config.js';
export { createOpcuaDriver, defaultOpcuaPkiDir, OpcuaDriver } from './driver.js';
export { opcuaSimulator, OpcuaMonitorSimulator, SIM_NAMESPACE_URI, SIMULATOR_MAPPINGS, type OpcuaSimulatorOptions } from './simulator.js';
