// Issue 9 item 6: a driver's protocol library loads only when a configured
// device needs it. A real `hoichan agent` / `hoichan hub` process runs with an
// ESM loader hook (module.register) that writes every module URL it loads to
// a file; node-opcua and serialport are ES-imported by our modules, so their
// entry points show up there if anything loads them.

import { spawn } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { PROJECT_ROOT, TEST_SECRET, ensureWorkerBinary } from '../support/hub.js';
import { removeDir, tempDir } from './journal-helpers.js';
import { expect, freePort } from './uplink-helpers.js';

const HOOKS = `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(process.env.HOICHAN_TEST_LOADED_LOG, url + '\\n');
  return next(url, context);
}
`;
const PRELOAD = `import { register } from 'node:module';
register('./hooks.mjs', import.meta.url);
`;

interface ExampleDevice {
  protocol: string;
  settings: Record<string, unknown>;
}

describe('drivers load only when a configured device needs them', function () {
  this.timeout(120_000);
  let dir: string;

  beforeEach(async () => {
    dir = await tempDir('hoichan-lazy-drivers-');
    await writeFile(join(dir, 'hooks.mjs'), HOOKS);
    await writeFile(join(dir, 'preload.mjs'), PRELOAD);
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  /** Runs `hoichan <args>` until a log line contains `ready`, stops it, and returns the module URLs it loaded. */
  async function loadedBy(name: string, args: string[], ready: string, env: Record<string, string> = {}): Promise<string[]> {
    const log = join(dir, `${name}.loaded`);
    const child = spawn(process.execPath, ['--import', join(dir, 'preload.mjs'), join(PROJECT_ROOT, 'bin', 'hoichan.js'), ...args], {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, HOICHAN_LOG_LEVEL: 'info', HOICHAN_TEST_LOADED_LOG: log, ...env },
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no "${ready}" within 90 s`)), 90_000);
        child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before "${ready}"`)));
        createInterface({ input: child.stdout! }).on('line', (line) => {
          if (line.includes(ready)) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    return (await readFile(log, 'utf8')).split('\n').filter(Boolean);
  }

  async function agentSite(keep: (d: ExampleDevice) => boolean): Promise<string> {
    const example = JSON.parse(await readFile(join(PROJECT_ROOT, 'config', 'site.example.json'), 'utf8'));
    const devices = (example.devices as ExampleDevice[]).filter(keep).map((d) => {
      const settings = { ...d.settings };
      if (d.protocol === 'hl7-mllp') settings.port = 0;
      if (typeof settings.path === 'string') settings.path = join(dir, `absent-${d.protocol}`);
      if (typeof settings.pkiDir === 'string') settings.pkiDir = join(dir, 'pki');
      return { ...d, settings };
    });
    const file = join(dir, `site-${devices.length}.json`);
    await writeFile(file, JSON.stringify({ ...example, hub: { url: `http://127.0.0.1:${await freePort()}`, token: 'unused' }, journal: { dir: join(dir, `journal-${devices.length}`) }, devices }));
    return file;
  }

  const opcua = (urls: string[]) => urls.filter((u) => u.includes('/node_modules/node-opcua'));
  const serialport = (urls: string[]) => urls.filter((u) => u.includes('/node_modules/serialport/'));
  // Simulators live in src/sim/ (issue 11); nothing an agent or the hub runs may load one.
  const simulators = (urls: string[]) => urls.filter((u) => u.includes('/dist/src/sim/') || /\/devices\/.*simulat/.test(u));

  it('an agent with the example site minus OPC UA never loads node-opcua (nor any simulator)', async () => {
    const urls = await loadedBy('agent', ['agent', '--config', await agentSite((d) => d.protocol !== 'opcua')], 'device drivers started');
    // The hook sees what the agent does load: its HL7 and serial drivers, serialport.
    expect(urls.some((u) => u.endsWith('/dist/src/devices/hl7/driver.js'))).to.equal(true);
    expect(urls.some((u) => u.endsWith('/dist/src/devices/serial/cyton/driver.js'))).to.equal(true);
    expect(serialport(urls)).to.not.deep.equal([]);
    expect(opcua(urls)).to.deep.equal([]);
    expect(simulators(urls)).to.deep.equal([]);
  });

  it('an agent with the whole example site does load node-opcua', async () => {
    const urls = await loadedBy('agent-opcua', ['agent', '--config', await agentSite(() => true)], 'device drivers started');
    expect(opcua(urls)).to.not.deep.equal([]);
    // The OPC UA driver is loaded, its simulator (an OPC UA server) is not.
    expect(urls.some((u) => u.endsWith('/dist/src/devices/opcua/driver.js'))).to.equal(true);
    expect(simulators(urls)).to.deep.equal([]);
  });

  it('no module under src/devices/ imports a simulator', async () => {
    const root = join(PROJECT_ROOT, 'dist', 'src', 'devices');
    const files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.js'));
    expect(files.length).to.be.greaterThan(20);
    const offenders: string[] = [];
    for (const file of files) {
      const text = await readFile(join(root, file), 'utf8');
      for (const [, spec] of text.matchAll(/(?:from|import\()\s*'([^']+)'/g)) {
        const target = relative(PROJECT_ROOT, join(root, file, '..', spec!));
        if (target.startsWith(join('dist', 'src', 'sim'))) offenders.push(`${file} -> ${spec}`);
      }
    }
    expect(offenders).to.deep.equal([]);
  });

  it('the hub loads neither serialport nor node-opcua', async () => {
    ensureWorkerBinary();
    const urls = await loadedBy('hub', ['hub'], 'hub listening', { HOICHAN_PORT: '0', HOICHAN_JWT_SECRET: TEST_SECRET, HOICHAN_WORKERS: '1', HOICHAN_AUDIT_DIR: join(dir, 'audit') });
    expect(urls.some((u) => u.endsWith('/dist/src/hub/Hub.js'))).to.equal(true);
    expect(opcua(urls)).to.deep.equal([]);
    expect(serialport(urls)).to.deep.equal([]);
    expect(simulators(urls)).to.deep.equal([]);
  });
});
