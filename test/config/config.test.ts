import { expect } from 'chai';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, DEMO_JWT_SECRET, loadConfig } from '../../src/config/load.js';

const secret = { HOICHAN_JWT_SECRET: 'a-real-secret-of-32-characters!!' };

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  it('loads config/default.json with the secret from the environment', () => {
    const config = loadConfig({ env: secret });
    expect(config.http.port).to.equal(3000);
    expect(config.media.webRtcServerPort).to.equal(40000);
    expect(config.auth).to.deep.equal({
      jwtSecret: secret.HOICHAN_JWT_SECRET,
      keys: [],
      signingKid: null,
      issuer: 'hoichan',
      maxTokenLifetime: 12 * 3600,
      maxAgentTokenLifetime: 30 * 24 * 3600,
      clockSkew: 60,
      revocationFile: null,
      revocationMaxStaleness: 90,
      demo: false,
    });
    expect(config.redis.url).to.equal(null);
  });

  it('applies every documented environment variable', () => {
    const config = loadConfig({
      env: {
        ...secret,
        HOICHAN_PORT: '8443',
        HOICHAN_LISTEN_IP: '10.1.2.3',
        HOICHAN_ANNOUNCED_IP: '203.0.113.7',
        HOICHAN_RTC_PORT: '44000',
        HOICHAN_WORKERS: '3',
        REDIS_URL: 'redis://127.0.0.1:6379',
        HOICHAN_SIGNING_KID: 'default',
        HOICHAN_TOKEN_ISSUER: 'https://idp.benhvien.example.vn',
        HOICHAN_REVOCATION_FILE: '/var/lib/hoichan/revoked.jsonl',
      },
    });
    expect(config.auth).to.include({ signingKid: 'default', issuer: 'https://idp.benhvien.example.vn', revocationFile: '/var/lib/hoichan/revoked.jsonl' });
    expect(config.http.port).to.equal(8443);
    expect(config.media).to.include({ listenIp: '10.1.2.3', announcedIp: '203.0.113.7', webRtcServerPort: 44000, numWorkers: 3 });
    expect(config.redis.url).to.equal('redis://127.0.0.1:6379');
  });

  it('merges a config file (--config or HOICHAN_CONFIG) under the environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoichan-config-'));
    const file = join(dir, 'site.json');
    writeFileSync(file, JSON.stringify({ http: { port: 4000 }, media: { workerLogLevel: 'error' } }));
    expect(loadConfig({ env: { ...secret, HOICHAN_CONFIG: file } }).http.port).to.equal(4000);
    expect(loadConfig({ env: { ...secret, HOICHAN_PORT: '5000' }, file }).http.port).to.equal(5000);
    expect(loadConfig({ env: secret, file }).media.workerLogLevel).to.equal('error');
  });

  it('names the bad key and the variable it came from', () => {
    expect(configError(() => loadConfig({ env: { ...secret, HOICHAN_PORT: 'eighty' } }))).to.match(/http\.port \(from HOICHAN_PORT\): Expected number/);
    expect(configError(() => loadConfig({ env: { ...secret, HOICHAN_LISTEN_IP: 'not-an-ip' } }))).to.match(/media\.listenIp \(from HOICHAN_LISTEN_IP\)/);
    expect(configError(() => loadConfig({ env: { ...secret, HOICHAN_WORKERS: '-1' } }))).to.match(/media\.numWorkers \(from HOICHAN_WORKERS\)/);
    expect(configError(() => loadConfig({ env: { ...secret, REDIS_URL: 'nope' } }))).to.match(/redis\.url \(from REDIS_URL\)/);
    expect(configError(() => loadConfig({ env: { HOICHAN_JWT_SECRET: 'short' } }))).to.match(/auth\.jwtSecret \(from HOICHAN_JWT_SECRET\): must be at least 32 bytes/);
    // 31 bytes is still short; multi-byte characters count as bytes.
    expect(configError(() => loadConfig({ env: { HOICHAN_JWT_SECRET: 'x'.repeat(31) } }))).to.match(/must be at least 32 bytes/);
    expect(loadConfig({ env: { HOICHAN_JWT_SECRET: 'ồ'.repeat(11) } }).auth.jwtSecret).to.equal('ồ'.repeat(11));
  });

  it('names an out-of-range idle-router wait, outage buffer, revocation staleness or recovery store bound in a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoichan-config-'));
    const file = join(dir, 'bounds.json');
    const bad = (section: Record<string, unknown>) => {
      writeFileSync(file, JSON.stringify(section));
      return configError(() => loadConfig({ env: secret, file }));
    };
    expect(bad({ media: { idleRouterCloseMs: -1 } })).to.match(/media\.idleRouterCloseMs/);
    expect(bad({ media: { idleRouterCloseMs: 3_600_000 } })).to.match(/media\.idleRouterCloseMs/);
    expect(bad({ devices: { unstoredBytesPerDevice: 1024 } })).to.match(/devices\.unstoredBytesPerDevice/);
    expect(bad({ devices: { unstoredBytes: 'lots' } })).to.match(/devices\.unstoredBytes/);
    expect(bad({ auth: { revocationMaxStaleness: -5 } })).to.match(/auth\.revocationMaxStaleness/);
    expect(bad({ signaling: { recoveryMaxEvents: 10 } })).to.match(/signaling\.recoveryMaxEvents/);
    expect(bad({ signaling: { recoveryMaxSessions: 1.5 } })).to.match(/signaling\.recoveryMaxSessions/);
  });

  it('names unknown keys and cross-field mistakes in a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoichan-config-'));
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ media: { rtcMinPort: 50000, rtcMaxPort: 40000 }, colour: 'blue' }));
    const message = configError(() => loadConfig({ env: secret, file }));
    expect(message).to.match(/media\.rtcMaxPort: must be greater than media\.rtcMinPort/);
    expect(message).to.match(/colour/);
    writeFileSync(file, '{ not json');
    expect(configError(() => loadConfig({ env: secret, file }))).to.match(/is not valid JSON/);
    expect(configError(() => loadConfig({ env: secret, file: join(dir, 'missing.json') }))).to.match(/cannot read config file/);
  });

  it('takes the device-stream thresholds and uplink limit from a file; degraded at or above late, a burst of a full batch', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoichan-config-'));
    const file = join(dir, 'devices.json');
    writeFileSync(file, JSON.stringify({ devices: { lateAfterMs: 2000, degradedLagMs: 20000 } }));
    expect(loadConfig({ env: secret, file }).devices).to.include({ lateAfterMs: 2000, degradedLagMs: 20000, uplinkReadingsPerSecond: 10000 });
    expect(loadConfig({ env: secret }).devices).to.deep.equal({
      lateAfterMs: 5000,
      degradedLagMs: 10000,
      uplinkReadingsPerSecond: 10000,
      uplinkBurst: 30000,
      uplinkBytesPerSecond: 4 * 1024 * 1024,
      uplinkBytesBurst: 16 * 1024 * 1024,
      maxDevicesPerSite: 32,
      deviceTtlMs: 3600_000,
      historyTtlMs: 24 * 3600_000,
      historyBytesPerDevice: 16 * 1024 * 1024,
      historyBytesPerSite: 64 * 1024 * 1024,
      maxReplayBytes: 8 * 1024 * 1024,
      maxPeerBacklogBytes: 1024 * 1024,
      unstoredBytesPerDevice: 8 * 1024 * 1024,
      unstoredBytes: 256 * 1024 * 1024,
    });
    writeFileSync(file, JSON.stringify({ devices: { lateAfterMs: 8000, degradedLagMs: 4000 } }));
    expect(configError(() => loadConfig({ env: secret, file }))).to.match(/devices\.degradedLagMs: must be at least devices\.lateAfterMs/);
    writeFileSync(file, JSON.stringify({ devices: { uplinkBurst: 500 } }));
    expect(configError(() => loadConfig({ env: secret, file }))).to.match(/devices\.uplinkBurst/);
  });

  it('refuses to run without a secret, except in demo mode with the public demo secret', () => {
    expect(configError(() => loadConfig({ env: {} }))).to.match(/auth\.jwtSecret: is required \(set HOICHAN_JWT_SECRET\)/);
    const demo = loadConfig({ env: {}, overrides: { auth: { demo: true } } });
    expect(demo.auth.jwtSecret).to.equal(DEMO_JWT_SECRET);
    // Outside demo mode the public secret is refused, wherever it comes from.
    expect(configError(() => loadConfig({ env: { HOICHAN_JWT_SECRET: DEMO_JWT_SECRET } }))).to.match(/auth\.jwtSecret \(from HOICHAN_JWT_SECRET\): is the public demo secret/);
    expect(configError(() => loadConfig({ env: {}, overrides: { auth: { keys: [{ kid: 'k1', alg: 'HS256', secret: DEMO_JWT_SECRET }] } } }))).to.match(/auth\.keys\.0\.secret: is the public demo secret/);
  });

  it('checks auth.keys: kids unique, secrets long, signingKid known, key files readable and of the right type', () => {
    const long = 'k'.repeat(40);
    const keys = (list: unknown[], extra: Record<string, unknown> = {}) => ({ auth: { keys: list, ...extra } });
    expect(configError(() => loadConfig({ env: secret, overrides: keys([{ kid: 'default', alg: 'HS256', secret: long }]) }))).to.match(/auth\.keys\.0\.kid: kid default is used twice \(auth\.jwtSecret is kid 'default'\)/);
    expect(configError(() => loadConfig({ env: {}, overrides: keys([{ kid: 'k1', alg: 'HS256', secret: 'short' }]) }))).to.match(/auth\.keys\.0\.secret: must be at least 32 bytes/);
    expect(configError(() => loadConfig({ env: {}, overrides: keys([{ kid: 'k1', alg: 'HS256', secret: long }], { signingKid: 'k2' }) }))).to.match(/auth\.signingKid: names no key \(have: k1\)/);
    expect(configError(() => loadConfig({ env: {}, overrides: keys([{ kid: 'k1', alg: 'none', secret: long }]) }))).to.match(/auth\.keys\.0\.alg/);
    expect(configError(() => loadConfig({ env: {}, overrides: keys([{ kid: 'idp', alg: 'RS256', publicKey: '/nonexistent/idp.pem' }]) }))).to.match(/auth\.keys\.0\.publicKey: cannot read key file \/nonexistent\/idp\.pem: ENOENT/);
    const dir = mkdtempSync(join(tmpdir(), 'hoichan-config-'));
    const edPem = join(dir, 'ed.pem');
    writeFileSync(edPem, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
    expect(configError(() => loadConfig({ env: {}, overrides: keys([{ kid: 'idp', alg: 'RS256', publicKey: edPem }]) }))).to.match(/auth\.keys\.0\.publicKey: an RS256 key must be an RSA key, not ed25519/);
    const ok = loadConfig({ env: {}, overrides: keys([{ kid: 'idp', alg: 'EdDSA', publicKey: edPem, issuer: 'https://idp.example' }]) });
    expect(ok.auth.keys[0]).to.include({ kid: 'idp', alg: 'EdDSA' });
    expect(configError(() => loadConfig({ env: secret, overrides: { auth: { maxTokenLifetime: 86400, maxAgentTokenLifetime: 3600 } } }))).to.match(/auth\.maxAgentTokenLifetime: must be at least auth\.maxTokenLifetime/);
  });

  it('keeps vanished-peer cleanup within 30 s', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoichan-config-'));
    const file = join(dir, 'slow.json');
    writeFileSync(file, JSON.stringify({ signaling: { pingIntervalMs: 20000, pingTimeoutMs: 20000 } }));
    expect(configError(() => loadConfig({ env: secret, file }))).to.match(/signaling\.reconnectGraceMs: .*within 30000/);
  });
});
