import { expect } from 'chai';
import express from 'express';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hub } from '../../src/hub/Hub.js';
import type { Bundle } from '../../src/records/fhir.js';
import { TestClient, startTestHub, token, waitUntil } from '../support/hub.js';
import { validateBundle } from './fhirCheck.js';

/**
 * A FHIR server reduced to what the outbox needs: POST / takes a transaction
 * Bundle. It answers 503 to the first `failFirst` POSTs, then 200 with a
 * transaction-response, and keeps what it accepted.
 */
class LocalFhirServer {
  readonly attempts: { at: number; status: number }[] = [];
  readonly accepted: Bundle[] = [];
  failFirst: number;
  #server: Server | undefined;
  #port = 0;

  constructor(failFirst: number) {
    this.failFirst = failFirst;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}/fhir`;
  }

  /** Reserves a port now (so a hub can be configured with it) without listening yet. */
  async reservePort(): Promise<void> {
    await this.listen();
    await this.stop();
  }

  async listen(): Promise<void> {
    const app = express();
    app.use(express.json({ type: 'application/fhir+json', limit: '20mb' }));
    app.post('/fhir', (req, res) => {
      const bundle = req.body as Bundle;
      if (this.attempts.length < this.failFirst) {
        this.attempts.push({ at: Date.now(), status: 503 });
        res.status(503).json({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'transient' }] });
        return;
      }
      this.attempts.push({ at: Date.now(), status: 200 });
      this.accepted.push(bundle);
      res.status(200).type('application/fhir+json').json({ resourceType: 'Bundle', type: 'transaction-response', entry: bundle.entry.map(() => ({ response: { status: '200 OK' } })) });
    });
    await new Promise<void>((resolve) => {
      this.#server = app.listen(this.#port, '127.0.0.1', () => {
        this.#port = (this.#server!.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('records: FHIR outbox', function () {
  const dirs: string[] = [];
  const hubs: Hub[] = [];
  const servers: LocalFhirServer[] = [];
  after(async () => {
    for (const hub of hubs) await hub.close().catch(() => undefined);
    for (const server of servers) await server.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  async function conferenceSession(hub: Hub, conferenceId: string): Promise<string> {
    const client = await TestClient.connect(hub.url, token('specialist', conferenceId, 'Dr Outbox'));
    await client.ok('join', { conferenceId });
    const sessionId = hub.records!.recorder.sessionOf(conferenceId)!;
    await client.ok('leave');
    client.close();
    await hub.records!.queue.flush();
    return sessionId;
  }

  it('POSTs the ended session as a transaction, retrying with backoff until the server accepts it', async () => {
    const server = new LocalFhirServer(2);
    servers.push(server);
    await server.listen();
    const dir = mkdtempSync(join(tmpdir(), 'hoichan-test-outbox-'));
    dirs.push(dir);
    const hub = await startTestHub({ records: { dir, fhirEndpoint: server.url, fhirRetryInitialMs: 100, fhirRetryMaxMs: 2000 } });
    hubs.push(hub);
    const sessionId = await conferenceSession(hub, 'outbox-case');
    await waitUntil(() => server.accepted.length === 1, 20_000, 'the bundle to be accepted');
    expect(server.attempts.map((a) => a.status)).to.deep.equal([503, 503, 200]);
    // Backoff: the second wait is at least the doubled first one (100 ms, then 200 ms).
    expect(server.attempts[2]!.at - server.attempts[1]!.at).to.be.at.least(200);
    const bundle = server.accepted[0]!;
    expect(bundle.type).to.equal('transaction');
    validateBundle(bundle);
    expect((bundle.entry[0]!.resource as any).identifier[0].value).to.equal(sessionId);
    // The server answered 200 before the hub wrote down that it did: wait for the row, not the POST.
    await waitUntil(async () => (await hub.records!.store.outbox(sessionId))[0]?.status === 'sent', 10_000, 'the outbox row to say sent');
    const [row] = await hub.records!.store.outbox(sessionId);
    expect(row).to.include({ status: 'sent', attempts: 3, lastStatus: 200 });
  });

  it('keeps the outbox across a hub restart and delivers from the new run', async () => {
    const server = new LocalFhirServer(1);
    servers.push(server);
    await server.reservePort(); // down while the first hub runs: every attempt fails to connect
    const dir = mkdtempSync(join(tmpdir(), 'hoichan-test-outbox-'));
    dirs.push(dir);
    const records = { dir, hubId: 'outbox-restart', fhirEndpoint: server.url, fhirRetryInitialMs: 100, fhirRetryMaxMs: 1000 };
    const first = await startTestHub({ records });
    hubs.push(first);
    const sessionId = await conferenceSession(first, 'restart-case');
    await waitUntil(async () => ((await first.records!.store.outbox(sessionId))[0]?.attempts ?? 0) >= 1, 10_000, 'a failed attempt');
    const [pending] = await first.records!.store.outbox(sessionId);
    expect(pending!.status).to.equal('pending');
    expect(pending!.lastError).to.be.a('string');
    await first.close();

    await server.listen();
    const second = await startTestHub({ records });
    hubs.push(second);
    await waitUntil(() => server.accepted.length === 1, 20_000, 'the bundle to be accepted after the restart');
    expect(server.attempts.map((a) => a.status)).to.deep.equal([503, 200]);
    expect((server.accepted[0]!.entry[0]!.resource as any).identifier[0].value).to.equal(sessionId);
    await waitUntil(async () => (await second.records!.store.outbox(sessionId))[0]?.status === 'sent', 10_000, 'the outbox row to say sent');
    const [row] = await second.records!.store.outbox(sessionId);
    expect(row!.status).to.equal('sent');
    expect(row!.attempts).to.be.at.least(3);
  });
});
