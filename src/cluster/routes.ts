import { Router, type RequestHandler } from 'express';
import type { HubCluster } from './HubCluster.js';

/**
 * GET /api/cluster: the hubs of the cluster, their load, and which
 * conferences span which hubs. A hub without Redis answers that it runs
 * alone. POST /api/ops/drain: this hub takes no new joins (they are sent to
 * another hub of its region) and lets its conferences end. Engineers only.
 */
export function clusterRoutes(cluster: HubCluster | undefined, engineerOnly: RequestHandler): Router {
  const router = Router();
  router.get('/api/cluster', engineerOnly, (_req, res) => {
    res.json(cluster ? cluster.report() : { enabled: false, hubs: [], conferences: [] });
  });
  router.post('/api/ops/drain', engineerOnly, (_req, res) => {
    if (!cluster) {
      res.status(409).json({ error: { code: 'conflict', message: 'this hub runs alone (no redis.url): there is no other hub to drain to' } });
      return;
    }
    cluster.drain();
    res.json({ draining: true, hubId: cluster.hubId });
  });
  return router;
}
