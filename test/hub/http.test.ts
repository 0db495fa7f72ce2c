import { expect } from 'chai';
import type { Hub } from '../../src/hub/Hub.js';
import { TestClient, startTestHub, token } from '../support/hub.js';

describe('HTTP API', () => {
  let hub: Hub;
  before(async () => {
    hub = await startTestHub();
  });
  after(() => hub.close());

  it('GET /healthz and /readyz need no token', async () => {
    const health = await fetch(`${hub.url}/healthz`);
    expect(health.status).to.equal(200);
    expect(await health.json()).to.include({ status: 'ok' });
    const ready = await fetch(`${hub.url}/readyz`);
    expect(ready.status).to.equal(200);
    expect(await ready.json()).to.deep.equal({ ready: true, workers: { live: 1, expected: 1 } });
  });

  it('GET /api/conferences lists conferences, peers and producer counts for an engineer', async () => {
    const a = await TestClient.connect(hub.url, token('specialist', 'ward-7', 'Dr A'));
    try {
      const joined = await a.ok('join', { conferenceId: 'ward-7', displayName: 'Dr A' });
      const reply = await fetch(`${hub.url}/api/conferences`, { headers: { authorization: `Bearer ${token('engineer', '*')}` } });
      expect(reply.status).to.equal(200);
      const body = (await reply.json()) as { conferences: any[] };
      expect(body.conferences).to.have.length(1);
      expect(body.conferences[0]).to.deep.include({ conferenceId: 'ward-7', producers: 0, workerSlot: 0 });
      expect(body.conferences[0].peers).to.deep.equal([
        { peerId: joined.peerId, displayName: 'Dr A', role: 'specialist', producers: 0, consumers: 0, transports: 0 },
      ]);
    } finally {
      a.close();
    }
  });

  it('refuses /api/conferences without a token (401) and for other roles (403)', async () => {
    const none = await fetch(`${hub.url}/api/conferences`);
    expect(none.status).to.equal(401);
    expect(((await none.json()) as any).error.code).to.equal('unauthorized');
    const forged = await fetch(`${hub.url}/api/conferences`, { headers: { authorization: 'Bearer abc.def.ghi' } });
    expect(forged.status).to.equal(401);
    const specialist = await fetch(`${hub.url}/api/conferences`, { headers: { authorization: `Bearer ${token('specialist', 'ward-7')}` } });
    expect(specialist.status).to.equal(403);
    expect(((await specialist.json()) as any).error.code).to.equal('forbidden');
  });

  it('serves the web client at /', async () => {
    const page = await fetch(`${hub.url}/`);
    expect(page.status).to.equal(200);
    expect(await page.text()).to.include('<script type="module" src="/app.js">');
  });
});
