import type { RequestHandler } from 'express';
import { requestClientAddress } from '../common/clientAddress.js';
import { KeyedBuckets } from '../common/tokenBucket.js';

export interface HttpRateLimit {
  /** Per client IP (src/common/clientAddress.ts: the TCP peer, or the forwarded client behind a trusted proxy). */
  requestsPerSecond: number;
  requestBurst: number;
}

/**
 * A token bucket per client IP over the API routes. Past it: 429 with the
 * JSON error every route answers, and Retry-After.
 */
export function perIpRateLimit({ requestsPerSecond, requestBurst }: HttpRateLimit): RequestHandler {
  const buckets = new KeyedBuckets(requestsPerSecond, requestBurst);
  const retryAfter = String(Math.max(1, Math.ceil(1 / requestsPerSecond)));
  return (req, res, next) => {
    if (buckets.take(requestClientAddress(req))) {
      next();
      return;
    }
    res
      .status(429)
      .set('retry-after', retryAfter)
      .json({ error: { code: 'rate_limited', message: `too many requests from this address (http.requestsPerSecond ${requestsPerSecond}); slow down` } });
  };
}
