import { Router, type RequestHandler } from 'express';
import type { HubTelemetry } from './HubTelemetry.js';
import { register } from './metrics.js';

/**
 * GET /metrics (Prometheus text) and GET /api/ops (JSON for the engineer page).
 * `engineerOnly` is the app's bearer-token middleware: both need an engineer token.
 */
export function telemetryRoutes(telemetry: HubTelemetry, engineerOnly: RequestHandler): Router {
  const router = Router();

  router.get('/metrics', engineerOnly, async (_req, res, next) => {
    try {
      await telemetry.refresh();
      // end(), not send(): send() would rewrite prom-client's exact content type.
      res.set('content-type', register.contentType).end(await register.metrics());
    } catch (err) {
      next(err);
    }
  });

  router.get('/api/ops', engineerOnly, (_req, res) => {
    res.json(telemetry.ops());
  });

  return router;
}
