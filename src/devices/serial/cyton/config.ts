import { z } from 'zod';
import { serialLinkConfigShape } from '../commonConfig.js';

/** ADS1299 programmable gains. */
export const CYTON_GAINS = [1, 2, 4, 6, 8, 12, 24] as const;
export const CYTON_CHANNELS = 8;

const gain = z
  .number()
  .refine((g) => (CYTON_GAINS as readonly number[]).includes(g), { message: `gain must be one of ${CYTON_GAINS.join(', ')}` });

export const DEFAULT_CYTON_CHANNEL_CODES = [
  'MDC_ECG_ELEC_POTL_I',
  'MDC_ECG_ELEC_POTL_II',
  'MDC_ECG_ELEC_POTL_III',
  'MDC_ECG_ELEC_POTL_V1',
  'MDC_ECG_ELEC_POTL_V2',
  'MDC_ECG_ELEC_POTL_V3',
  'MDC_ECG_ELEC_POTL_V4',
  'MDC_ECG_ELEC_POTL_V5',
] as const;

/** Protocol settings of one OpenBCI Cyton board used as an ECG front end. */
export const cytonDeviceConfigSchema = z
  .object({
    ...serialLinkConfigShape,
    baudRate: z.number().int().positive().default(115200),
    /** Board sample rate; 250 Hz unless the board was reconfigured. */
    sampleRate: z.number().positive().default(250),
    /** ADS1299 gain, one for all channels or one per channel (must match the board's setting). */
    gain: z.union([gain, z.array(gain).length(CYTON_CHANNELS)]).default(24),
    /** MDC code per channel (ch1..ch8); null disables a channel. */
    channels: z
      .array(z.string().min(1).nullable())
      .length(CYTON_CHANNELS)
      .default([...DEFAULT_CYTON_CHANNEL_CODES]),
    /** Samples per waveform reading (25 = 100 ms at 250 Hz). */
    chunkSamples: z.number().int().min(1).max(2500).default(25),
    /** Send 'b' after opening (and 's' on stop) so the board streams. */
    sendStartStop: z.boolean().default(true),
  })
  .strict();

export type CytonDeviceConfig = z.infer<typeof cytonDeviceConfigSchema>;
export type CytonDeviceConfigInput = z.input<typeof cytonDeviceConfigSchema>;

/** mV per count: 4.5 V reference / gain / (2^23 - 1), times 1000 mV/V. */
export function cytonMillivoltsPerCount(gain: number): number {
  return 4500 / gain / 8388607;
}
