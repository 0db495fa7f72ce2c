import { mindrayHl7Simulator } from './hl7/index.js';
import { opcuaSimulator } from './opcua/index.js';
import { cms50Simulator, cytonSimulator } from './serial/index.js';
import type { SimulatorCommand } from './simulator.js';

/** Every `hoichan simulate <kind>`, by kind. */
export const simulatorCommands: ReadonlyMap<string, SimulatorCommand> = new Map(
  [mindrayHl7Simulator, cytonSimulator, cms50Simulator, opcuaSimulator].map((command) => [command.kind, command]),
);
