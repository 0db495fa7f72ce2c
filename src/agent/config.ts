// The agent's sections of the site config (`hub` and `journal`; devices are
// validated by src/devices/siteConfig.ts). docs/AGENT.md documents each key.

import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { describeIssues } from '../common/zodIssues.js';
import { loadSiteConfig, SiteConfigError, type SiteConfig } from '../devices/siteConfig.js';

/** 127.0.0.0/8, ::1 and localhost: traffic that never leaves the machine. */
function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * Why the agent must not use this hub URL, or undefined when it may: the site
 * token and every reading travel over it, so anything but https:// to another
 * machine needs the operator's explicit `hub.allowInsecure: true`.
 */
export function hubUrlProblem(url: string, allowInsecure: boolean): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'Invalid url';
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return `must be an https:// URL (got ${parsed.protocol})`;
  if (parsed.protocol === 'http:' && !allowInsecure && !isLoopbackHost(parsed.hostname)) {
    return (
      `must be https:// for a hub on another machine (got ${parsed.origin}): the site token and readings would travel in clear; ` +
      'set hub.allowInsecure: true only on a network you trust (docs/SECURITY.md, "Transport security")'
    );
  }
  return undefined;
}

export const hubSettingsSchema = z
  .object({
    /**
     * Hub base URL, e.g. https://hub.example.org (the agent connects to <url>/uplink),
     * or several hubs of a cluster (docs/SCALING.md): tried in turn, the next one
     * after a connection fails or drops; the agent resumes from the seqs the
     * cluster acked, whichever hub stored them.
     */
    url: z.union([z.string().url(), z.array(z.string().url()).min(1).max(16)]),
    /** Allow http:// to a hub that is not on this machine (a trusted LAN, a TLS tunnel). */
    allowInsecure: z.boolean().default(false),
    /** A site JWT (`hoichan token --role site --sub <siteId>`), or tokenFile: a file holding one, re-read at every connect. */
    token: z.string().min(1).optional(),
    tokenFile: z.string().min(1).optional(),
    /** Backlog (readings the hub has not had) is sent at most this fast; live readings are not limited. */
    catchUpReadingsPerSecond: z.number().positive().default(2000),
    /** Readings per batch. */
    batchReadings: z.number().int().min(1).max(1000).default(200),
    /** Batches per device sent and not yet acknowledged. */
    windowBatches: z.number().int().min(1).max(64).default(4),
    /** No ack within this: the link is considered dead and the agent reconnects. */
    ackTimeoutMs: z.number().int().min(1000).default(15_000),
    /** Reconnect delay: exponential from min to max, with full jitter. */
    reconnectMinMs: z.number().int().min(10).default(500),
    reconnectMaxMs: z.number().int().min(100).default(30_000),
    /** How often journal depth and driver counters are reported. */
    statusIntervalMs: z.number().int().min(200).default(5000),
  })
  .strict()
  .refine((h) => (h.token === undefined) !== (h.tokenFile === undefined), { message: 'Give exactly one of token or tokenFile' })
  .superRefine((h, ctx) => {
    const urls = hubUrls(h);
    for (const [i, url] of urls.entries()) {
      const problem = hubUrlProblem(url, h.allowInsecure);
      if (problem && problem !== 'Invalid url') ctx.addIssue({ code: 'custom', path: typeof h.url === 'string' ? ['url'] : ['url', i], message: problem });
    }
  });

/** hub.url as a list: one hub, or the hubs of a cluster in the order they are tried. */
export function hubUrls(hub: { url: string | string[] }): string[] {
  return typeof hub.url === 'string' ? [hub.url] : hub.url;
}

export const journalSettingsSchema = z
  .object({
    dir: z.string().min(1),
    fsync: z.enum(['always', 'interval', 'never']).default('interval'),
    // 20 ms rather than the journal's 100: drivers that wait for each append (OPC UA, serial) fell
    // behind at 100 ms (bench: device-latency); 20 ms still bounds fsyncs to 50/s and the risk to 20 ms.
    fsyncIntervalMs: z.number().int().positive().default(20),
    maxBytes: z.number().int().positive().default(2 * 1024 * 1024 * 1024),
    segmentBytes: z.number().int().min(4096).default(8 * 1024 * 1024),
    /** Resend dedup: device messages (HL7 control id + content hash) remembered durably, bounded by count and age. */
    dedup: z
      .object({
        maxEntries: z.number().int().min(0).default(10_000),
        maxAgeMs: z.number().int().min(0).default(60 * 60 * 1000),
      })
      .strict()
      .default({}),
    /** AES-256 key file (owner-only mode): reading bodies are encrypted at rest. For shared site PCs. */
    encryptionKeyFile: z.string().min(1).optional(),
  })
  .strict();

export type HubSettings = z.output<typeof hubSettingsSchema>;
export type JournalSettings = z.output<typeof journalSettingsSchema>;

export interface AgentConfig {
  site: SiteConfig;
  hub: HubSettings;
  journal: JournalSettings;
}

/** Validates the agent's sections of a parsed site config; throws SiteConfigError naming each bad key. */
export function agentConfigOf(site: SiteConfig, source = 'site config'): AgentConfig {
  const problems: string[] = [];
  const hub = hubSettingsSchema.safeParse(site.hub);
  if (!hub.success) problems.push(...describeIssues(hub.error).map((p) => within('hub', p)));
  const journal = journalSettingsSchema.safeParse(site.journal);
  if (!journal.success) problems.push(...describeIssues(journal.error).map((p) => within('journal', p)));
  if (!hub.success || !journal.success) throw new SiteConfigError(source, problems);
  return { site, hub: hub.data, journal: journal.data };
}

/** 'url: Invalid url' -> 'hub.url: Invalid url'; '(root): ...' -> 'hub: ...'. */
function within(section: string, problem: string): string {
  return problem.startsWith('(root): ') ? `${section}: ${problem.slice(8)}` : `${section}.${problem}`;
}

export async function loadAgentConfig(file: string): Promise<AgentConfig> {
  return agentConfigOf(await loadSiteConfig(file), file);
}

/** The site token: inline, or read from tokenFile now (so a rotated file is picked up at the next connect). */
export async function readToken(hub: HubSettings): Promise<string> {
  if (hub.token) return hub.token;
  return (await readFile(hub.tokenFile!, 'utf8')).trim();
}
