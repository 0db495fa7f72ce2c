import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Authenticator, FileRevocations } from '../../src/auth/index.js';
import { PROJECT_ROOT } from '../support/hub.js';

const bin = join(PROJECT_ROOT, 'bin', 'hoichan.js');
const secret = 'cli-test-secret-0123456789-0123456789-0123456789';

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

  it('token prints a JWT the hub accepts, with the claims asked for', async () => {
    const out = hoichan(['token', '--role', 'site', '--conference', 'hoi-chan-42', '--name', 'Tram Y te Con Dao', '--ttl', '600'], {
      HOICHAN_JWT_SECRET: secret,
    });
    expect(out.status, out.stderr).to.equal(0);
    const auth = Authenticator.forSecret(secret);
    const claims = await auth.verify(out.stdout.trim(), 'signaling');
    expect(claims).to.include({ role: 'site', conf: 'hoi-chan-42', name: 'Tram Y te Con Dao', iss: 'hoichan' });
    expect(claims.jti).to.be.a('string');
    expect(claims.exp - Math.floor(Date.now() / 1000)).to.be.within(590, 600);
    // The same token is not an uplink credential.
    await auth.verify(out.stdout.trim(), 'uplink').then(
      () => expect.fail('a site person token opened the uplink'),
      (err: Error) => expect(err.message).to.equal('token is not for the uplink endpoint'),
    );
  });

  it('token --role agent prints an uplink-only credential bound to the site and its conferences and devices', async () => {
    const out = hoichan(['token', '--role', 'agent', '--site', 'tram-con-dao', '--conference', 'hoi-chan-42', '--conference', 'hoi-chan-43', '--device', 'bed1-monitor'], {
      HOICHAN_JWT_SECRET: secret,
    });
    expect(out.status, out.stderr).to.equal(0);
    const auth = Authenticator.forSecret(secret);
    const claims = await auth.verify(out.stdout.trim(), 'uplink');
    expect(claims).to.deep.include({ role: 'agent', sub: 'tram-con-dao', conferences: ['hoi-chan-42', 'hoi-chan-43'], devices: ['bed1-monitor'] });
    // Default lifetime: the agent maximum (30 days).
    expect(claims.exp - claims.iat).to.equal(30 * 24 * 3600);
    await auth.verify(out.stdout.trim(), 'signaling').then(
      () => expect.fail('an agent token opened signaling'),
      (err: Error) => expect(err.message).to.equal('token is not for the signaling endpoint'),
    );
    const star = hoichan(['token', '--role', 'agent', '--site', 's', '--conference', '*'], { HOICHAN_JWT_SECRET: secret });
    expect(star.status).to.equal(2);
    expect(star.stderr).to.include("'*' is not allowed");
    const siteStar = hoichan(['token', '--role', 'site', '--conference', '*', '--name', 'n'], { HOICHAN_JWT_SECRET: secret });
    expect(siteStar.status).to.equal(2);
    expect(siteStar.stderr).to.include("only engineer may have '*'");
    const tooLong = hoichan(['token', '--role', 'specialist', '--conference', 'c', '--name', 'n', '--ttl', String(13 * 3600)], { HOICHAN_JWT_SECRET: secret });
    expect(tooLong.status).to.equal(2);
    expect(tooLong.stderr).to.include('auth.maxTokenLifetime');
  });

  it('token revoke appends to the revocation file the hub reads, by jti, by token or by subject', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoichan-cli-revoke-'));
    const file = join(dir, 'revoked.jsonl');
    const env = { HOICHAN_JWT_SECRET: secret, HOICHAN_REVOCATION_FILE: file };
    const nowhere = hoichan(['token', 'revoke', '--jti', 'jti-12345678'], { HOICHAN_JWT_SECRET: secret });
    expect(nowhere.status).to.equal(2);
    expect(nowhere.stderr).to.include('set auth.revocationFile (HOICHAN_REVOCATION_FILE) or REDIS_URL');
    const auth = Authenticator.forSecret(secret);
    const victim = auth.sign({ kind: 'person', sub: 'bs-lan', name: 'BS Lan', role: 'specialist', conf: 'c1', ttlSeconds: 600 });
    const byToken = hoichan(['token', 'revoke', '--token', victim], env);
    expect(byToken.status, byToken.stderr).to.equal(0);
    const bySub = hoichan(['token', 'revoke', '--sub', 'tram-xa-a'], env);
    expect(bySub.status, bySub.stderr).to.equal(0);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const claims = await auth.verify(victim, 'signaling');
    expect(lines[0]).to.deep.equal({ jti: claims.jti, until: claims.exp });
    expect(lines[1]).to.include({ sub: 'tram-xa-a' });
    expect(lines[1].until - lines[1].before).to.equal(30 * 24 * 3600);
    expect(statSync(file).mode & 0o777).to.equal(0o600);
    // A hub reading that file refuses the token.
    const store = await FileRevocations.open(file);
    try {
      expect(await store.isRevoked(claims)).to.equal(true);
    } finally {
      await store.close();
    }
  });

  it('token refuses bad options with a clear message and exit code 2', () => {
    const badRole = hoichan(['token', '--role', 'admin', '--conference', 'c', '--name', 'n'], { HOICHAN_JWT_SECRET: secret });
    expect(badRole.status).to.equal(2);
    expect(badRole.stderr).to.include('--role must be specialist, site, engineer or agent');
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
