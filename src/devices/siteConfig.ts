import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { describeIssues } from '../common/zodIssues.js';
// The config modules only (zod schemas): validating a site config loads no driver, simulator or protocol library.
import { hl7DeviceConfigSchema } from './hl7/config.js';
import { opcuaDeviceConfigSchema } from './opcua/config.js';
import { cms50DeviceConfigSchema } from './serial/cms50/config.js';
import { cytonDeviceConfigSchema } from './serial/cyton/config.js';

// The site agent's config file: which site it is, where the hub is, where the
// journal lives, and the devices it reads. hub and journal belong to the agent
// (src/agent) and are only passed through here; devices are validated down to
// each protocol's settings so a typo fails at start with the key named.

export const DEVICE_TYPES = ['ecg', 'vitals', 'spo2', 'ultrasound', 'ventilator', 'other'] as const;
export const DEVICE_PROTOCOLS = ['hl7-mllp', 'cyton', 'cms50', 'opcua'] as const;
export type DeviceProtocol = (typeof DEVICE_PROTOCOLS)[number];

const deviceId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'Expected 1-64 letters, digits, ".", "_" or "-"');

const deviceCommon = {
  id: deviceId,
  type: z.enum(DEVICE_TYPES),
  model: z.string().min(1),
  /** Overrides the site's default conference. */
  conferenceId: z.string().min(1).optional(),
};

export const siteDeviceSchema = z.discriminatedUnion('protocol', [
  z.object({ ...deviceCommon, protocol: z.literal('hl7-mllp'), settings: hl7DeviceConfigSchema }).strict(),
  z.object({ ...deviceCommon, protocol: z.literal('cyton'), settings: cytonDeviceConfigSchema }).strict(),
  z.object({ ...deviceCommon, protocol: z.literal('cms50'), settings: cms50DeviceConfigSchema }).strict(),
  z.object({ ...deviceCommon, protocol: z.literal('opcua'), settings: opcuaDeviceConfigSchema }).strict(),
]);

/** Sections owned by another component: kept whole, checked there. */
const ownedElsewhere = z.object({}).passthrough();

export const siteConfigSchema = z
  .object({
    siteId: z.string().min(1),
    /** Conference the site's devices stream into unless a device names its own. */
    conferenceId: z.string().min(1),
    /** Uplink settings (url, token or tokenFile, ...), owned by the agent. */
    hub: ownedElsewhere,
    /** Journal settings (dir, ...), owned by the agent. */
    journal: ownedElsewhere,
    devices: z.array(siteDeviceSchema),
  })
  .passthrough()
  .superRefine((config, ctx) => {
    const seen = new Map<string, number>();
    config.devices.forEach((device, index) => {
      const first = seen.get(device.id);
      if (first !== undefined) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['devices', index, 'id'], message: `Duplicate device id "${device.id}" (also devices[${first}])` });
      } else {
        seen.set(device.id, index);
      }
    });
  });

export type SiteConfig = z.output<typeof siteConfigSchema>;
export type SiteConfigInput = z.input<typeof siteConfigSchema>;
export type SiteDevice = z.output<typeof siteDeviceSchema>;

/** A site config that failed validation; message lists every problem as `path: message`. */
export class SiteConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid site config ${source}:\n  ${problems.join('\n  ')}`);
    this.name = 'SiteConfigError';
  }
}

/** Validates parsed JSON; throws SiteConfigError naming each bad key. */
export function parseSiteConfig(input: unknown, source = 'site config'): SiteConfig {
  const result = siteConfigSchema.safeParse(input);
  if (!result.success) throw new SiteConfigError(source, describeIssues(result.error));
  return result.data;
}

export async function loadSiteConfig(file: string): Promise<SiteConfig> {
  const text = await readFile(file, 'utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SiteConfigError(file, [`not valid JSON: ${err instanceof Error ? err.message : String(err)}`]);
  }
  return parseSiteConfig(json, file);
}
