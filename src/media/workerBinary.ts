import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

export const BUILD_SCRIPT = 'scripts/build-worker.sh (npm run worker:build)';

export class WorkerBinaryError extends Error {
  override name = 'WorkerBinaryError';
}

/**
 * The installed mediasoup's version, read without importing it (the import
 * fixes the worker binary). mediasoup 3.13+ does not export './package.json',
 * so it is found by walking up from the package's entry point.
 */
export function mediasoupVersion(): string {
  for (let dir = dirname(require.resolve('mediasoup')); ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'mediasoup' && pkg.version) return pkg.version;
    }
    if (dirname(dir) === dir) throw new Error('cannot find mediasoup/package.json above its entry point');
  }
}

/** Where scripts/build-worker.sh caches the worker: by mediasoup version, outside the clone. */
export function cachedWorkerPath(env: NodeJS.ProcessEnv = process.env): string {
  const cacheDir = env.HOICHAN_CACHE_DIR ?? join(homedir(), '.cache', 'hoichan');
  return join(cacheDir, 'mediasoup-worker', mediasoupVersion(), 'mediasoup-worker');
}

/**
 * Finds the mediasoup-worker binary (MEDIASOUP_WORKER_BIN wins, else the
 * build cache) and exports it in MEDIASOUP_WORKER_BIN, which mediasoup reads
 * once when its module loads (3.12 and 3.19 alike): call this before
 * importing mediasoup.
 */
export function resolveWorkerBinary(env: NodeJS.ProcessEnv = process.env): string {
  const bin = env.MEDIASOUP_WORKER_BIN || cachedWorkerPath(env);
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new WorkerBinaryError(
      `mediasoup-worker not found or not executable at ${bin}. Build it with ${BUILD_SCRIPT}, ` +
        'or set MEDIASOUP_WORKER_BIN to a mediasoup ' + mediasoupVersion() + ' worker binary.',
    );
  }
  // Started without its parent, a whole worker exits 41 ("not my real father")
  // once its shared libraries are loaded; anything else means a broken binary.
  const probeEnv = { ...env };
  delete probeEnv.MEDIASOUP_VERSION;
  const probe = spawnSync(bin, [], { env: probeEnv, stdio: 'ignore', timeout: 5000 });
  if (probe.status !== 41) {
    throw new WorkerBinaryError(
      `mediasoup-worker at ${bin} does not start (exit ${probe.status ?? probe.signal ?? probe.error?.message}). ` +
        `Rebuild it with ${BUILD_SCRIPT}.`,
    );
  }
  env.MEDIASOUP_WORKER_BIN = bin;
  return bin;
}

type Mediasoup = typeof import('mediasoup');
let loaded: Promise<Mediasoup> | undefined;

/** Imports mediasoup after MEDIASOUP_WORKER_BIN is set. */
export function loadMediasoup(): Promise<Mediasoup> {
  if (!loaded) {
    resolveWorkerBinary();
    loaded = import('mediasoup');
  }
  return loaded;
}
