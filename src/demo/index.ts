import { signToken } from '../signaling/auth.js';
import { DemoSite } from './demoSite.js';

export { DemoSite, demoSiteConfig } from './demoSite.js';

/**
 * The demo's site agent: simulated devices through the real drivers, the
 * journal and the uplink into `conferenceId` on the demo hub. Returns undefined
 * (after saying why) when the site cannot start, e.g. socat is missing: the
 * demo hub then runs without devices.
 */
export async function startDemoSite(hubUrl: string, jwtSecret: string, conferenceId: string): Promise<DemoSite | undefined> {
  const siteId = 'demo-site';
  const token = signToken({ sub: siteId, name: 'Demo site agent', role: 'site', conf: conferenceId, ttlSeconds: 7 * 24 * 3600 }, jwtSecret);
  try {
    // The demo's agent runs on the hub's own machine; with HOICHAN_HTTP_LISTEN_IP set to a LAN
    // address, hubUrl is that address over http, which the agent otherwise refuses.
    return await DemoSite.start({ hubUrl, token, siteId, conferenceId, ultrasound: true, hub: { allowInsecure: true } });
  } catch (err) {
    console.error(`hoichan demo: the demo site agent did not start (${(err as Error).message}); the hub runs without devices`);
    return undefined;
  }
}
