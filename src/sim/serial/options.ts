import { parseArgs } from 'node:util';

/** Options every serial simulator takes (node:util parseArgs config). */
export const commonSimOptions = {
  path: { type: 'string' },
  'heart-rate': { type: 'string', default: '72' },
  'corrupt-rate': { type: 'string', default: '0' },
  'drop-rate': { type: 'string', default: '0' },
  split: { type: 'boolean', default: false },
  burst: { type: 'string', default: '0' },
  'disconnect-every-ms': { type: 'string', default: '0' },
  'disconnect-for-ms': { type: 'string', default: '1000' },
  seed: { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

export const commonSimUsage = `  --path <tty>                 serial port to write to (e.g. one end of a socat pty pair)  [required]
  --heart-rate <bpm>           simulated heart rate (default 72)
  --corrupt-rate <p>           per frame: probability of flipping or inserting a random byte (default 0)
  --drop-rate <p>              per frame: probability of dropping one byte (default 0)
  --split                      write each batch in 2-4 pieces a few ms apart (partial frames)
  --burst <ms>                 hold frames and write them every <ms> at once (default 0: every 20 ms)
  --disconnect-every-ms <ms>   close the port every <ms> (default 0: never) ...
  --disconnect-for-ms <ms>     ... for this long (default 1000)
  --seed <n>                   seed for the fault and waveform randomness`;

export interface CommonSimSettings {
  path: string;
  heartRate: number;
  corruptRate: number;
  dropRate: number;
  split: boolean;
  burstMs: number;
  disconnectEveryMs: number;
  disconnectForMs: number;
  seed: number;
}

type ParsedValues = Record<string, string | boolean | undefined>;

export function parseSimArgs<T extends Record<string, { type: 'string' | 'boolean'; default?: string | boolean }>>(
  argv: string[],
  extra: T,
  usage: string,
): { common: CommonSimSettings; values: ParsedValues } {
  const { values } = parseArgs({ args: argv, options: { ...commonSimOptions, ...extra }, strict: true, allowPositionals: false });
  const v = values as ParsedValues;
  if (v.help) throw new Error(usage);
  if (typeof v.path !== 'string' || v.path === '') throw new Error(`--path is required\n${usage}`);
  const common: CommonSimSettings = {
    path: v.path,
    heartRate: numberOption(v, 'heart-rate', 20, 300),
    corruptRate: numberOption(v, 'corrupt-rate', 0, 1),
    dropRate: numberOption(v, 'drop-rate', 0, 1),
    split: v.split === true,
    burstMs: numberOption(v, 'burst', 0, 60_000),
    disconnectEveryMs: numberOption(v, 'disconnect-every-ms', 0, 86_400_000),
    disconnectForMs: numberOption(v, 'disconnect-for-ms', 0, 86_400_000),
    seed: typeof v.seed === 'string' ? numberOption(v, 'seed', 0, 2 ** 32) : Math.floor(Math.random() * 2 ** 32),
  };
  return { common, values: v };
}

export function numberOption(values: ParsedValues, name: string, min: number, max: number): number {
  const raw = values[name];
  const n = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new Error(`--${name} must be a number in [${min}, ${max}], got ${String(raw)}`);
  }
  return n;
}
