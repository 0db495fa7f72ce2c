import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KeyConfigError, KeyRing } from '../auth/keys.js';
import { issueMessage } from '../common/zodIssues.js';
import { DEMO_JWT_SECRET, configSchema, type HoichanConfig } from './schema.js';

export { DEMO_JWT_SECRET } from './schema.js';

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DEFAULT_CONFIG_PATH = join(projectRoot, 'config', 'default.json');

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Json = Record<string, unknown>;

/** Environment variables and the config key each one sets. */
const ENV_KEYS: Record<string, { path: string[]; type: 'string' | 'number' | 'list' }> = {
  HOICHAN_PORT: { path: ['http', 'port'], type: 'number' },
  HOICHAN_HTTP_LISTEN_IP: { path: ['http', 'listenIp'], type: 'string' },
  /** Comma-separated: `127.0.0.1,10.0.0.0/8`. */
  HOICHAN_TRUSTED_PROXIES: { path: ['http', 'trustedProxies'], type: 'list' },
  HOICHAN_LISTEN_IP: { path: ['media', 'listenIp'], type: 'string' },
  HOICHAN_ANNOUNCED_IP: { path: ['media', 'announcedIp'], type: 'string' },
  HOICHAN_RTC_PORT: { path: ['media', 'webRtcServerPort'], type: 'number' },
  HOICHAN_WORKERS: { path: ['media', 'numWorkers'], type: 'number' },
  HOICHAN_TLS_CERT: { path: ['tls', 'cert'], type: 'string' },
  HOICHAN_TLS_KEY: { path: ['tls', 'key'], type: 'string' },
  HOICHAN_JWT_SECRET: { path: ['auth', 'jwtSecret'], type: 'string' },
  HOICHAN_SIGNING_KID: { path: ['auth', 'signingKid'], type: 'string' },
  HOICHAN_TOKEN_ISSUER: { path: ['auth', 'issuer'], type: 'string' },
  HOICHAN_REVOCATION_FILE: { path: ['auth', 'revocationFile'], type: 'string' },
  REDIS_URL: { path: ['redis', 'url'], type: 'string' },
  HOICHAN_REGION: { path: ['cluster', 'region'], type: 'string' },
  HOICHAN_PUBLIC_URL: { path: ['cluster', 'publicUrl'], type: 'string' },
  HOICHAN_AUDIT_DIR: { path: ['audit', 'dir'], type: 'string' },
  HOICHAN_AUDIT_HMAC_KEY: { path: ['audit', 'hmacKey'], type: 'string' },
  DATABASE_URL: { path: ['records', 'databaseUrl'], type: 'string' },
  HOICHAN_RECORDS_DIR: { path: ['records', 'dir'], type: 'string' },
  HOICHAN_HUB_ID: { path: ['records', 'hubId'], type: 'string' },
  HOICHAN_FHIR_ENDPOINT: { path: ['records', 'fhirEndpoint'], type: 'string' },
  HOICHAN_FHIR_AUTHORIZATION: { path: ['records', 'fhirAuthorization'], type: 'string' },
  HOICHAN_RECORDING_DIR: { path: ['recording', 'dir'], type: 'string' },
};

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function deepMerge(base: Json, override: Json): Json {
  const out: Json = { ...base };
  for (const [key, value] of Object.entries(override)) {
    out[key] = isObject(value) && isObject(base[key]) ? deepMerge(base[key] as Json, value) : value;
  }
  return out;
}

function readJson(path: string): Json {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (!isObject(parsed)) throw new Error('top level must be an object');
    return parsed;
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
}

function setPath(target: Json, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (!isObject(node[key])) node[key] = {};
    node = node[key] as Json;
  }
  node[path[path.length - 1]!] = value;
}

export interface LoadConfigOptions {
  /** Optional file merged over config/default.json (--config or HOICHAN_CONFIG). */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Values set by the program itself (CLI flags, demo mode), applied last. */
  overrides?: Json;
}

/**
 * default.json, then the optional file, then environment variables, then
 * overrides. Every key is validated; an error names the key and where its
 * value came from.
 */
export function loadConfig(options: LoadConfigOptions = {}): HoichanConfig {
  const env = options.env ?? process.env;
  let raw = readJson(DEFAULT_CONFIG_PATH);
  const file = options.file ?? env.HOICHAN_CONFIG;
  if (file) raw = deepMerge(raw, readJson(file));

  const sources = new Map<string, string>();
  for (const [name, { path, type }] of Object.entries(ENV_KEYS)) {
    const text = env[name];
    if (text === undefined || text === '') continue;
    const value =
      type === 'number'
        ? /^\d+$/.test(text.trim())
          ? Number(text)
          : text
        : type === 'list'
          ? text
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean)
          : text;
    setPath(raw, path, value);
    sources.set(path.join('.'), name);
  }
  if (options.overrides) raw = deepMerge(raw, options.overrides);
  if (raw.auth && isObject(raw.auth) && raw.auth.demo === true && !raw.auth.jwtSecret) {
    (raw.auth as Json).jwtSecret = DEMO_JWT_SECRET;
  }

  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      // Dotted keys, as the configuration tables in docs/OPERATIONS.md name them (and as sources are keyed).
      const key = issue.path.join('.') || '(root)';
      const source = sources.get(key);
      return `  ${key}${source ? ` (from ${source})` : ''}: ${issueMessage(issue)}`;
    });
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  // Key files and PEM text are read and parsed now, so a bad key is a config error at start, naming the key.
  try {
    KeyRing.fromConfig(result.data.auth);
  } catch (err) {
    if (err instanceof KeyConfigError) throw new ConfigError(`invalid configuration:\n  ${err.message}`);
    throw err;
  }
  return result.data;
}
