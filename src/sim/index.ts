import { mindrayHl7Simulator } from './hl7/command.js';
import { opcuaSimulator } from './opcua/simulator.js';
import { cms50Simulator } from './serial/cms50.js';
import { cytonSimulator } from './serial/cyton.js';
import type { SimulatorCommand } from './simulator.js';

/** Every `hoichan simulate <kind>`, by kind. */
export const simulatorCommands: ReadonlyMap<string, SimulatorCommand> = new Map(
  [mindrayHl7Simulator, cytonSimulator, cms50Simulator, opcuaSimulator].map((command) => [command.kind, command]),
);
