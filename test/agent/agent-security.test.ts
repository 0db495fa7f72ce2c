// Issue 10 on the site agent: the hub URL must be https:// unless the hub is on
// this machine or the operator says allowInsecure, and the journal (patient
// readings) is readable by the agent's account alone.

import { chmod, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { agentConfigOf, hubSettingsSchema, hubUrlProblem } from '../../src/agent/config.js';
import { Journal } from '../../src/agent/journal/index.js';
import { UplinkClient } from '../../src/agent/uplink/UplinkClient.js';
import { SiteConfigError, parseSiteConfig } from '../../src/devices/siteConfig.js';
import { createLogger } from '../../src/common/logger.js';
import { expect, numeric, removeDir, tempDir } from './journal-helpers.js';

function problemsOf(hub: Record<string, unknown>): string {
  const site = parseSiteConfig({ siteId: 's', conferenceId: 'c', hub: { token: 'x', ...hub }, journal: { dir: '/tmp/j' }, devices: [] });
  try {
    agentConfigOf(site, 'site.json');
    return '';
  } catch (err) {
    expect(err).to.be.instanceOf(SiteConfigError);
    return (err as Error).message;
  }
}

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

describe('agent: transport security of the hub URL', () => {
  it('refuses http:// to another machine with a clear config error', () => {
    for (const url of ['http://10.0.0.5:3000', 'http://hub.example.vn', 'http://192.168.1.20/', 'http://[fd00::1]:3000']) {
      const message = problemsOf({ url });
      expect(message, url).to.match(/hub\.url: must be https:\/\/ for a hub on another machine/);
      expect(message, url).to.include('hub.allowInsecure');
    }
    expect(problemsOf({ url: 'ftp://hub.example.vn' })).to.match(/hub\.url: must be an https:\/\/ URL \(got ftp:\)/);
  });

  it('accepts https:// anywhere and http:// to this machine (127.0.0.0/8, ::1, localhost)', () => {
    for (const url of ['https://hub.example.vn', 'https://10.0.0.5:3443', 'http://127.0.0.1:3000', 'http://127.8.9.10', 'http://localhost:3000', 'http://[::1]:3000']) {
      expect(problemsOf({ url }), url).to.equal('');
    }
  });

  it('honours hub.allowInsecure: true, and it defaults to false', () => {
    expect(problemsOf({ url: 'http://10.0.0.5:3000', allowInsecure: true })).to.equal('');
    expect(hubSettingsSchema.parse({ url: 'https://hub.example.vn', token: 'x' }).allowInsecure).to.equal(false);
    expect(problemsOf({ url: 'http://10.0.0.5:3000', allowInsecure: 'yes' })).to.match(/hub\.allowInsecure/);
  });

  it('the uplink client applies the same rule to settings built in code', () => {
    const hub = { ...hubSettingsSchema.parse({ url: 'https://hub.example.vn', token: 'x' }), url: 'http://10.0.0.5:3000' };
    const options = { siteId: 's', hub, journal: {} as never, devices: () => [], logger: createLogger('test') };
    expect(() => new UplinkClient(options)).to.throw(/hub\.url: must be https:\/\//);
    expect(hubUrlProblem('http://10.0.0.5:3000', true)).to.equal(undefined);
  });
});

describe('agent: journal file modes', () => {
  let dir: string;
  let umask: number;
  beforeEach(async () => {
    dir = join(await tempDir(), 'journal');
    // A permissive umask, as on a shared site PC: the modes must not depend on it.
    umask = process.umask(0o002);
  });
  afterEach(async () => {
    process.umask(umask);
    await removeDir(join(dir, '..'));
  });

  it('creates the directory 0700 and every file 0600', async () => {
    const journal = await Journal.open({ dir, fsync: 'always', segmentBytes: 4096 });
    for (let i = 0; i < 60; i++) await journal.append([numeric('bed-1', 60 + i)]);
    await journal.ack('bed-1', 10);
    const names = await readdir(dir);
    expect(names.some((n) => n.endsWith('.seg'))).to.equal(true);
    expect(names).to.include('LOCK');
    expect(await modeOf(dir)).to.equal(0o700);
    for (const name of names) expect(await modeOf(join(dir, name)), name).to.equal(0o600);
    await journal.close();
    const after = await readdir(dir);
    expect(after).to.include('checkpoint.json');
    for (const name of after) expect(await modeOf(join(dir, name)), name).to.equal(0o600);
  });

  it('tightens an existing journal left readable by others when it opens', async () => {
    const first = await Journal.open({ dir, fsync: 'always' });
    await first.append([numeric('bed-1', 72)]);
    await first.close();
    await chmod(dir, 0o755);
    for (const name of await readdir(dir)) await chmod(join(dir, name), 0o644);
    await writeFile(join(dir, 'notes.txt'), 'copied in', { mode: 0o666 });
    await mkdir(join(dir, 'sub'), { mode: 0o755 });

    const journal = await Journal.open({ dir, fsync: 'always' });
    try {
      expect(await modeOf(dir)).to.equal(0o700);
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        if (entry.isFile()) expect(await modeOf(join(dir, entry.name)), entry.name).to.equal(0o600);
      }
      const read = await journal.read();
      expect(read.map((r) => (r.kind === 'numeric' ? r.value : undefined))).to.deep.equal([72]);
    } finally {
      await journal.close();
    }
  });
});
