import type { Authenticator } from '../auth/index.js';
import { DemoSite } from './demoSite.js';

export { DemoSite, demoSiteConfig } from './demoSite.js';

/**
 * The demo's site agent: simulated devices through the real drivers, the
 * journal and the uplink into `conferenceId` on the demo hub. Returns undefined
 * (after saying why) when the site cannot start, e.g. socat is missing: the
 * demo hub then runs without devices.
 */
export async function startDemoSite(hubUrl: string, auth: Authenticator, conferenceId: string): Promise<DemoSite | undefined> {
  const siteId = 'demo-site';
  // As a real site is set up: an agent credential for the uplink, bound to the site and its conference,
  // and a site person's token (the shorter, people's lifetime) for the ultrasound ingest.
  const token = auth.sign({ kind: 'agent', siteId, name: 'Demo site agent', conferences: [conferenceId], ttlSeconds: auth.options.maxAgentTokenLifetime });
  const ingestToken = auth.sign({ kind: 'person', sub: `${siteId}-ultrasound`, name: 'Demo ultrasound', role: 'site', conf: conferenceId, ttlSeconds: auth.options.maxTokenLifetime });
  try {
    // The demo's agent runs on the hub's own machine; with HOICHAN_HTTP_LISTEN_IP set to a LAN
    // address, hubUrl is that address over http, which the agent otherwise refuses.
    return await DemoSite.start({ hubUrl, token, ingestToken, siteId, conferenceId, ultrasound: true, hub: { allowInsecure: true } });
  } catch (err) {
    console.error(`hoichan demo: the demo site agent did not start (${(err as Error).message}); the hub runs without devices`);
    return undefined;
  }
}
