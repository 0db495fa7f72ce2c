import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConferenceManager } from '../media/ConferenceManager.js';
import type { WorkerPool } from '../media/WorkerPool.js';
import { AuthError, bearerToken, verifyToken, type Claims } from '../signaling/auth.js';
import type { HubTelemetry } from '../telemetry/HubTelemetry.js';
import { telemetryRoutes } from '../telemetry/routes.js';
import type { Role } from '../media/events.js';
import { ingestRoutes } from './ingestRoutes.js';

/** Built browser client (scripts/build-web.mjs writes it). */
export const WEB_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'web');

export interface HttpDeps {
  pool: WorkerPool;
  conferences: ConferenceManager;
  jwtSecret: string;
  /** GET /metrics and /api/ops, for engineers. */
  telemetry?: HubTelemetry;
}

/** Express middleware: a valid bearer token whose role is one of `roles`. */
export function requireRole(jwtSecret: string, roles: Role[]) {
  return (req: Request, res: Response, next: NextFunction): void => {
    let claims: Claims;
    try {
      claims = verifyToken(bearerToken(req.headers.authorization), jwtSecret);
    } catch (err) {
      res.status(401).json({ error: { code: 'unauthorized', message: err instanceof AuthError ? err.message : 'unauthorized' } });
      return;
    }
    if (!roles.includes(claims.role)) {
      res.status(403).json({ error: { code: 'forbidden', message: `requires role ${roles.join(' or ')}` } });
      return;
    }
    res.locals.claims = claims;
    next();
  };
}

export function createHttpApp({ pool, conferences, jwtSecret, telemetry }: HttpDeps): Express {
  const app = express();
  app.disable('x-powered-by');

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', uptimeSeconds: Math.round(process.uptime()) });
  });

  app.get('/readyz', (_req, res) => {
    const ready = pool.ready;
    res.status(ready ? 200 : 503).json({ ready, workers: { live: pool.workers.length, expected: pool.size } });
  });

  app.get('/api/conferences', requireRole(jwtSecret, ['engineer']), (_req, res) => {
    res.json({
      conferences: conferences.list().map((conference) => ({
        conferenceId: conference.id,
        workerSlot: conference.worker.slot,
        producers: conference.producers.length,
        peers: conference.peers.map((peer) => ({
          ...peer.summary,
          producers: peer.producers.size,
          consumers: peer.consumers.size,
          transports: peer.transports.size,
        })),
      })),
    });
  });

  if (telemetry) app.use(telemetryRoutes(telemetry, requireRole(jwtSecret, ['engineer'])));

  app.use(ingestRoutes(conferences, requireRole(jwtSecret, ['site', 'specialist'])));

  if (existsSync(WEB_ROOT)) {
    app.use(express.static(WEB_ROOT, { index: 'index.html', maxAge: '1h' }));
    // Client-side views (web/src/router.ts): the page picks the view from the path.
    app.get(['/conference/:id', '/site/:id', '/ops'], (_req, res) => {
      res.set('cache-control', 'no-cache').sendFile(join(WEB_ROOT, 'index.html'));
    });
  }
  app.use((_req, res) => {
    res.status(404).json({ error: { code: 'not_found', message: 'no such route' } });
  });
  return app;
}
