// Agent start-up bench: time from spawning `hoichan agent` to "ports open"
// (the registry's 'device drivers started' log line: every driver's start()
// has returned, HL7 listeners bound, serial ports being opened), for the
// example site (config/site.example.json) with and without its OPC UA device.
// The agent's restart time is the serial devices' gap after every restart.
// Not part of the test suite. Run after building:
//   node dist/scripts/bench/agent-startup.js [--runs 7] [--root /path/to/a/built/checkout]
// --root measures another checkout's build (e.g. main before a change).
// Prints a table and writes bench-results/agent-startup.json.

import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { createServer } from 'node:net';
import { PROJECT_ROOT } from './support/common.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '7' }, root: { type: 'string' } } });
const runs = Number(values.runs);
const root = values.root ?? PROJECT_ROOT;
const STARTED = 'device drivers started';
const TIMEOUT_MS = 120_000;

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Device {
  protocol: string;
  settings: Record<string, unknown>;
}

/** One agent start: ms from spawn to the drivers-started line, then a clean stop. */
async function startOnce(site: Record<string, unknown>, dir: string): Promise<number> {
  const devices = (site.devices as Device[]).map((d) => {
    const settings = { ...d.settings };
    if (d.protocol === 'hl7-mllp') settings.port = 0; // another agent or demo may hold the example port
    if (typeof settings.path === 'string') settings.path = join(dir, `absent-${d.protocol}`);
    if (typeof settings.pkiDir === 'string') settings.pkiDir = join(dir, 'pki');
    return { ...d, settings };
  });
  const config = {
    ...site,
    hub: { url: `http://127.0.0.1:${await freePort()}`, token: 'bench' }, // unreachable: start-up must not wait for the hub
    journal: { dir: join(dir, 'journal') },
    devices,
  };
  const file = join(dir, 'site.json');
  await writeFile(file, JSON.stringify(config));
  const started = performance.now();
  const child = spawn(process.execPath, [join(root, 'bin', 'hoichan.js'), 'agent', '--config', file], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, HOICHAN_LOG_LEVEL: 'info' },
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    return await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${STARTED}" within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
      child.once('exit', (code) => reject(new Error(`agent exited (${code}) before "${STARTED}"`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (!line.includes(STARTED)) return;
        clearTimeout(timer);
        resolve(performance.now() - started);
      });
    });
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

function summary(ms: number[]): { runs: number; minMs: number; medianMs: number; maxMs: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  const round = (v: number) => Math.round(v);
  return { runs: ms.length, minMs: round(sorted[0]!), medianMs: round(sorted[Math.floor(sorted.length / 2)]!), maxMs: round(sorted[sorted.length - 1]!) };
}

const example = JSON.parse(await readFile(join(PROJECT_ROOT, 'config', 'site.example.json'), 'utf8')) as Record<string, unknown>;
const variants: Array<[string, Record<string, unknown>]> = [
  ['example site (HL7, Cyton, CMS50, OPC UA)', example],
  ['example site without OPC UA', { ...example, devices: (example.devices as Device[]).filter((d) => d.protocol !== 'opcua') }],
];
const results: Array<{ variant: string; root: string } & ReturnType<typeof summary>> = [];
for (const [variant, site] of variants) {
  const times: number[] = [];
  // One discarded warm-up run: the first start pays for a cold page cache, not for the code.
  for (let i = 0; i <= runs; i++) {
    const dir = await mkdtemp(join(tmpdir(), 'hoichan-agent-startup-'));
    try {
      const ms = await startOnce(site, dir);
      if (i > 0) times.push(ms);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  results.push({ variant, root, ...summary(times) });
}

console.log(`agent start-up to "${STARTED}" (${root}, ${runs} runs after a warm-up)`);
console.log('| site | runs | min ms | median ms | max ms |');
console.log('| --- | --- | --- | --- | --- |');
for (const r of results) console.log(`| ${r.variant} | ${r.runs} | ${r.minMs} | ${r.medianMs} | ${r.maxMs} |`);
await mkdir(join(PROJECT_ROOT, 'bench-results'), { recursive: true });
await writeFile(join(PROJECT_ROOT, 'bench-results', 'agent-startup.json'), JSON.stringify({ at: new Date().toISOString(), results }, null, 2));
