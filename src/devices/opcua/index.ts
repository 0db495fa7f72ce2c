// OPC UA devices: the driver (a subscription over opc.tcp). Its simulator lives in src/sim/opcua/.
export {
  opcuaDeviceConfigSchema,
  opcuaMappingSchema,
  type OpcuaDeviceConfig,
  type OpcuaDeviceConfigInput,
  type OpcuaMapping,
} from './config.js';
export { createOpcuaDriver, defaultOpcuaPkiDir, OpcuaDriver } from './driver.js';
