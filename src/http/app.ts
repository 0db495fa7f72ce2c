import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../common/logger.js';
import type { AuditLog } from '../audit/AuditLog.js';
import { outcomeOfStatus, refusalReason, type AuditSink } from '../audit/events.js';
import { auditRoutes } from '../audit/routes.js';
import type { ConferenceManager } from '../media/ConferenceManager.js';
import type { WorkerPool } from '../media/WorkerPool.js';
import { AuthError, bearerToken, type Authenticator, type Claims } from '../auth/index.js';
import { requestClientAddress, trustProxiesForApp, type TrustedProxies } from '../common/clientAddress.js';
import type { HubTelemetry } from '../telemetry/HubTelemetry.js';
import type { HubCluster } from '../cluster/HubCluster.js';
import { clusterRoutes } from '../cluster/routes.js';
import { telemetryRoutes } from '../telemetry/routes.js';
import type { Role } from '../contract/conference.js';
import { ingestRoutes } from './ingestRoutes.js';
import { MAX_BUNDLE_OBSERVATIONS } from '../records/fhir.js';
import { recordsRoutes } from '../records/routes.js';
import type { RecordsStore } from '../records/RecordsStore.js';
import type { RecordingManager } from '../recording/RecordingManager.js';
import { recordingRoutes } from '../recording/routes.js';
import { securityHeadersMiddleware } from './security.js';

const log = createLogger('http');
import { perIpRateLimit, type HttpRateLimit } from './rateLimit.js';

/** Built browser client (scripts/build-web.mjs writes it). */
export const WEB_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'web');

export interface HttpDeps {
  pool: WorkerPool;
  conferences: ConferenceManager;
  auth: Authenticator;
  /** GET /metrics and /api/ops, for engineers. */
  telemetry?: HubTelemetry;
  /** The hub serves HTTPS itself: HSTS on, and the CSP names wss:// only. */
  tls?: boolean;
  /** The audit log: refusals, engineer API use and ingests are recorded; GET /api/audit reads it. */
  audit?: AuditLog;
  /** Per-IP limit on /api and /metrics (config http.requestsPerSecond, http.requestBurst). */
  rateLimit?: HttpRateLimit;
  /** Peers whose X-Forwarded-For names the client (config http.trustedProxies); none: every client is its TCP peer. */
  trustedProxies?: TrustedProxies;
  /** Consultation records: /api/records (engineers; specialists for their conference). */
  records?: RecordsStore;
  /** Conference recordings: GET /api/recordings/... and the /review/:id page (src/recording/routes.ts). */
  recording?: RecordingManager;
  /** This hub's cluster membership (redis.url set): GET /api/cluster, POST /api/ops/drain. */
  cluster?: HubCluster | undefined;
}

/** The paths that serve the web client's page (web/src/router.ts picks the view). */
const PAGE_PATHS = ['/', '/index.html', '/conference/:id', '/site/:id', '/ops', '/records', '/review/:id'];

/**
 * Marker put in the fragment when a link carrying ?token= is refused: the page
 * says the link format changed (web/src/auth.ts) instead of joining.
 */
export const OLD_LINK_MARKER = 'old-link-format';

/** The JSON error answer every failure gets: no stack trace, no path on disk. */
function sendError(res: Response, status: number, code: string, message: string): void {
  res.status(status).json({ error: { code, message } });
}

/**
 * Express's own error answers are HTML with a stack trace and install paths:
 * every error (a body too large, a bad percent-encoding in a route parameter,
 * an unsupported charset, anything a handler throws) is answered here in JSON.
 * Mounted last.
 */
export function jsonErrorHandler(err: unknown, req: Request, res: Response, next: NextFunction): void {
  if (res.headersSent) return next(err);
  const e = (typeof err === 'object' && err !== null ? err : {}) as { status?: unknown; statusCode?: unknown; type?: unknown; limit?: unknown; expose?: unknown; message?: unknown };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status === 413 || e.type === 'entity.too.large') {
    const limit = typeof e.limit === 'number' ? ` (limit ${e.limit} bytes)` : '';
    return sendError(res, 413, 'payload_too_large', `request body too large${limit}`);
  }
  if (err instanceof URIError || (status === 400 && /decode param/i.test(String(e.message ?? '')))) {
    return sendError(res, 400, 'bad_request', 'malformed percent-encoding in the URL');
  }
  if (e.type === 'entity.parse.failed') return sendError(res, 400, 'bad_request', 'body: not valid JSON');
  if (status >= 400 && status < 500) {
    // http-errors marks messages written for the client as `expose`; others stay generic.
    const message = e.expose === true && typeof e.message === 'string' ? e.message : 'bad request';
    const code = status === 404 ? 'not_found' : status === 415 ? 'unsupported_media_type' : 'bad_request';
    return sendError(res, status, code, message);
  }
  // The path only: a query string could hold a credential.
  log.error({ err, method: req.method, path: req.path }, 'HTTP handler failed');
  sendError(res, 500, 'internal', 'internal error');
}

/** Express middleware: a valid bearer token whose role is one of `roles`. Refusals and engineer calls to /api go to `audit`. */
export function requireRole(auth: Authenticator, roles: Role[], audit?: AuditSink) {
  return (req: Request, res: Response, next: NextFunction): void => {
    // The path only: a query string could hold a token.
    const route = req.originalUrl.split('?')[0]!;
    auth.verify(bearerToken(req.headers.authorization), 'api', requestClientAddress(req)).then(
      (claims: Claims) => {
        if (!roles.includes(claims.role)) {
          audit?.record({ type: 'http.forbidden', actor: { sub: claims.sub, role: claims.role, ip: requestClientAddress(req) }, outcome: 'forbidden', target: { method: req.method, route } });
          res.status(403).json({ error: { code: 'forbidden', message: `requires role ${roles.join(' or ')}` } });
          return;
        }
        if (audit && claims.role === 'engineer' && route.startsWith('/api/')) {
          // 'close', not 'finish': a call the client abandoned is recorded too.
          res.once('close', () => audit.record({ type: 'engineer.api', actor: { sub: claims.sub, role: claims.role, ip: requestClientAddress(req) }, outcome: outcomeOfStatus(res.statusCode), target: { method: req.method, route, status: res.statusCode } }));
        }
        res.locals.claims = claims;
        next();
      },
      (err: unknown) => {
        const reason = refusalReason(err instanceof AuthError ? err.message : undefined);
        audit?.record({ type: 'auth.refused', actor: { sub: null, role: null, ip: requestClientAddress(req) }, outcome: 'unauthorized', target: { via: 'http', reason, method: req.method, route } });
        res.status(401).json({ error: { code: 'unauthorized', message: err instanceof AuthError ? err.message : 'unauthorized' } });
      },
    );
  };
}

export function createHttpApp({ pool, conferences, auth, telemetry, tls = false, audit, rateLimit, trustedProxies, records, recording, cluster }: HttpDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  if (trustedProxies) trustProxiesForApp(app, trustedProxies);
  // No route reads a query string through req.query: Node's flat parser instead of
  // qs, whose 6.13 (pinned by express 4.21) has an array-limit advisory (docs/SECURITY.md, Dependencies).
  app.set('query parser', 'simple');
  app.use(securityHeadersMiddleware(tls));

  // Links used to carry ?token=: it then sat in server and proxy logs, the browser's
  // history and every Referer. Refuse such a link (see OLD_LINK_MARKER) rather than
  // use it; other query parameters (lang) are kept.
  app.get(PAGE_PATHS, (req, res, next) => {
    const query = new URLSearchParams(req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?') + 1) : '');
    if (!query.has('token')) return next();
    query.delete('token');
    const rest = query.toString();
    res.set('cache-control', 'no-store').redirect(303, `${req.path}${rest ? `?${rest}` : ''}#${OLD_LINK_MARKER}`);
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', uptimeSeconds: Math.round(process.uptime()) });
  });

  app.get('/readyz', (_req, res) => {
    const ready = pool.ready;
    res.status(ready ? 200 : 503).json({ ready, workers: { live: pool.workers.length, expected: pool.size } });
  });

  if (rateLimit) app.use(['/api', '/metrics'], perIpRateLimit(rateLimit));

  app.get('/api/conferences', requireRole(auth, ['engineer'], audit), (_req, res) => {
    res.json({
      conferences: conferences.list().map((conference) => ({
        conferenceId: conference.id,
        workerSlot: conference.routers[0]?.workerSlot ?? null,
        routers: conference.routers,
        pipes: conference.pipes,
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

  if (telemetry) app.use(telemetryRoutes(telemetry, requireRole(auth, ['engineer'], audit)));
  if (audit) app.use(auditRoutes(audit, requireRole(auth, ['engineer'], audit)));
  if (records) app.use(recordsRoutes(records, requireRole(auth, ['engineer', 'specialist'], audit), { maxBundleObservations: MAX_BUNDLE_OBSERVATIONS }));
  app.use(clusterRoutes(cluster, requireRole(auth, ['engineer'], audit)));

  // Sites and specialists open ingests; their owner or an engineer reads and closes them (ingestRoutes checks which).
  app.use(ingestRoutes(conferences, requireRole(auth, ['site', 'specialist', 'engineer'], audit), audit));
  if (recording) app.use(recordingRoutes(recording, requireRole(auth, ['specialist'], audit), audit));

  if (existsSync(WEB_ROOT)) {
    // Source maps carry the client's full sources: never served, even if a build left one behind.
    app.use((req, res, next) => (req.path.endsWith('.map') ? sendError(res, 404, 'not_found', 'no such route') : next()));
    app.use(express.static(WEB_ROOT, { index: 'index.html', maxAge: '1h' }));
    // Client-side views (web/src/router.ts): the page picks the view from the path.
    app.get(['/conference/:id', '/site/:id', '/ops', '/records', '/review/:id'], (_req, res) => {
      res.set('cache-control', 'no-cache').sendFile(join(WEB_ROOT, 'index.html'));
    });
  }
  app.use((_req, res) => {
    sendError(res, 404, 'not_found', 'no such route');
  });
  app.use(jsonErrorHandler);
  return app;
}
