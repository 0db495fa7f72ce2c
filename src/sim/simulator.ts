import type { EventEmitter } from 'node:events';

/**
 * A simulated device, written independently of the driver that reads it
 * (no shared parsing or framing code), so a bug in one cannot hide in the other.
 */
export interface RunningSimulator extends EventEmitter<SimulatorEvents> {
  stop(): Promise<void>;
}

export interface SimulatorEvents {
  /** What the simulator put on the wire, in the driver's output terms, for tests and demos. */
  sent: [SentValues];
  error: [Error];
}

/** Numeric values by MDC code (e.g. MDC_ECG_HEART_RATE: 72) and waveform sample counts. */
export interface SentValues {
  t: number;
  numerics?: Record<string, number>;
  waveformSamples?: Record<string, number[]>;
  alarm?: {
    code: string;
    priority: 'low' | 'medium' | 'high';
    active: boolean;
    /** Where the device sends them: the event phase, the alert text and the identity the driver gives the alarm. */
    phase?: string;
    text?: string;
    alarmId?: string;
  };
}

/** One `hoichan simulate <kind>` command. */
export interface SimulatorCommand {
  kind: string;
  summary: string;
  /** Option help, printed by `hoichan simulate <kind> --help`. */
  usage: string;
  /** Parses argv (node:util parseArgs) and starts the simulator; throws on bad options. */
  start(argv: string[]): Promise<RunningSimulator>;
}
