import { pino, type Logger } from 'pino';

export type { Logger };

// One structured JSON logger for the whole process. Components take a child
// logger named after themselves. Never log tokens or patient identifiers:
// log ids (peerId, deviceId, conferenceId) and counts instead.
const root = pino({
  level: process.env.HOICHAN_LOG_LEVEL ?? (process.env.NODE_ENV === 'test' ? 'silent' : 'info'),
  base: { pid: process.pid },
  redact: { paths: ['token', '*.token', 'auth.token', 'authorization', '*.authorization'], censor: '[redacted]' },
});

export function createLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return root.child({ component, ...bindings });
}
