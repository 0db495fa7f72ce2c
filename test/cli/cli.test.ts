import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { verifyToken } from '../../src/signaling/auth.js';
import { PROJECT_ROOT } from '../support/hub.js';

const bin = join(PROJECT_ROOT, 'bin', 'hoichan.js');
const secret = 'cli-test-secret-0123456789';

function hoichan(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [bin, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', HOICHAN_LOG_LEVEL: 'silent', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('hoichan command line', () => {
  it('prints help for the command and for each subcommand', () => {
    const top = hoichan(['--help']);
    expect(top.status).to.equal(0);
    for (const name of ['hub', 'demo', 'token', 'simulate']) expect(top.stdout).to.include(name);
    for (const name of ['hub', 'token', 'demo']) {
      const help = hoichan([name, '--help']);
      expect(help.status, name).to.equal(0);
      expect(help.stdout).to.match(new RegExp(`^hoichan ${name}`));
    }
    const sims = hoichan(['simulate', '--help']);
    expect(sims.stdout).to.include('mindray-hl7').and.include('cyton').and.include('cms50').and.include('opcua');
  });

  it('token prints a JWT the hub accepts, with the claims asked for', () => {
    const out = hoichan(['token', '--role', 'site', '--conference', 'hoi-chan-42', '--name', 'Tram Y te Con Dao', '--ttl', '600'], {
      HOICHAN_JWT_SECRET: secret,
    });
    expect(out.status, out.stderr).to.equal(0);
    const claims = verifyToken(out.stdout.trim(), secret);
    expect(claims).to.include({ role: 'site', conf: 'hoi-chan-42', name: 'Tram Y te Con Dao' });
    expect(claims.exp - Math.floor(Date.now() / 1000)).to.be.within(590, 600);
  });

  it('token refuses bad options with a clear message and exit code 2', () => {
    const badRole = hoichan(['token', '--role', 'admin', '--conference', 'c', '--name', 'n'], { HOICHAN_JWT_SECRET: secret });
    expect(badRole.status).to.equal(2);
    expect(badRole.stderr).to.include('--role must be specialist, site or engineer');
    const noSecret = hoichan(['token', '--role', 'site', '--conference', 'c', '--name', 'n']);
    expect(noSecret.status).to.not.equal(0);
    expect(noSecret.stderr).to.include('auth.jwtSecret: is required');
    const unknown = hoichan(['token', '--colour', 'red']);
    expect(unknown.status).to.equal(2);
    expect(unknown.stderr).to.match(/Unknown option '--colour'/);
  });

  it('hub names the build script when the mediasoup worker binary is missing or broken', () => {
    const missing = hoichan(['hub', '--demo'], { MEDIASOUP_WORKER_BIN: '/nonexistent/mediasoup-worker', HOICHAN_PORT: '0' });
    expect(missing.status).to.equal(1);
    expect(missing.stderr).to.include('mediasoup-worker not found').and.include('scripts/build-worker.sh');
    const broken = hoichan(['hub', '--demo'], { MEDIASOUP_WORKER_BIN: '/bin/false', HOICHAN_PORT: '0' });
    expect(broken.status).to.equal(1);
    expect(broken.stderr).to.include('does not start').and.include('scripts/build-worker.sh');
  });
});
