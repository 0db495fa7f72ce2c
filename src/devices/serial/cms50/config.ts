import { z } from 'zod';
import { serialLinkConfigShape } from '../commonConfig.js';

/** Protocol settings of one Contec CMS50D+ pulse oximeter (live mode). */
export const cms50DeviceConfigSchema = z
  .object({
    ...serialLinkConfigShape,
    baudRate: z.number().int().positive().default(19200),
    /** Packets per second of the live stream. */
    sampleRate: z.number().positive().default(60),
    /** Pleth samples per waveform reading (6 = 100 ms at 60 Hz). */
    chunkSamples: z.number().int().min(1).max(600).default(6),
    /** SpO2 and pulse rate are emitted this often (latest values). */
    numericIntervalMs: z.number().int().min(100).default(1000),
  })
  .strict();

export type Cms50DeviceConfig = z.infer<typeof cms50DeviceConfigSchema>;
export type Cms50DeviceConfigInput = z.input<typeof cms50DeviceConfigSchema>;
