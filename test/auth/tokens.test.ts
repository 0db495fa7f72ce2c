import { expect } from 'chai';
import { generateKeyPairSync, createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jwt from 'jsonwebtoken';
import { AuthError, Authenticator, FileRevocations, KeyRing, MemoryRevocations, RedisRevocations, signJws, type AuthRefused, type Endpoint } from '../../src/auth/index.js';
import { loadConfig } from '../../src/config/load.js';
import { TestRedis } from '../support/redis.js';
import { waitUntil } from '../support/hub.js';

const SECRET = 'auth-test-secret-0123456789-0123456789-0123456789';
const now = () => Math.floor(Date.now() / 1000);

/** A person's claims the hub accepts, to be spoiled one field at a time. */
function personClaims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const claims = { iss: 'hoichan', aud: ['hoichan-signaling', 'hoichan-api'], sub: 'bs-lan', name: 'BS Lan', role: 'specialist', conf: 'hc-1', iat: now(), exp: now() + 600, jti: 'jti-0123456789', ...extra };
  // A field set to undefined is one the token lacks.
  return Object.fromEntries(Object.entries(claims).filter(([, v]) => v !== undefined));
}

async function refusal(auth: Authenticator, token: unknown, endpoint: Endpoint = 'signaling'): Promise<string> {
  try {
    await auth.verify(token, endpoint);
  } catch (err) {
    expect(err).to.be.instanceOf(AuthError);
    return (err as Error).message;
  }
  throw new Error('the token was accepted');
}

/** HS256 with the kid header the hub's jwtSecret key has. */
const hs = (claims: object, secret = SECRET, kid: string | null = 'default') => jwt.sign(claims, secret, { algorithm: 'HS256', ...(kid ? { keyid: kid } : {}) });

describe('tokens (src/auth)', () => {
  const auth = Authenticator.forSecret(SECRET);

  it('accepts a well-formed person token, minted by jsonwebtoken or by the hub itself', async () => {
    expect(await auth.verify(hs(personClaims()), 'signaling')).to.include({ sub: 'bs-lan', role: 'specialist', conf: 'hc-1' });
    expect(await auth.verify(hs(personClaims()), 'api')).to.include({ sub: 'bs-lan' });
    // Without kid while the ring holds one key (a plain shared secret).
    expect(await auth.verify(hs(personClaims(), SECRET, null), 'signaling')).to.include({ sub: 'bs-lan' });
    const minted = auth.sign({ kind: 'person', sub: 'x', name: 'X', role: 'site', conf: 'hc-1', ttlSeconds: 60 });
    const claims = await auth.verify(minted, 'api');
    expect(claims.jti).to.match(/^[0-9a-f-]{36}$/);
    expect(claims.exp - claims.iat).to.equal(60);
  });

  it('refuses expired, tampered, foreign-secret and malformed tokens', async () => {
    expect(await refusal(auth, hs(personClaims({ iat: now() - 100, exp: now() - 1 })))).to.equal('token expired');
    const good = hs(personClaims());
    const [h, p, s] = good.split('.');
    const tamperedPayload = Buffer.from(JSON.stringify(personClaims({ conf: 'hc-2' }))).toString('base64url');
    expect(await refusal(auth, `${h}.${tamperedPayload}.${s}`)).to.equal('bad signature');
    const flipped = s!.slice(0, -2) + (s!.endsWith('AA') ? 'BA' : 'AA');
    expect(await refusal(auth, `${h}.${p}.${flipped}`)).to.equal('bad signature');
    expect(await refusal(auth, hs(personClaims(), 'another-secret-0123456789-0123456789-0123'))).to.equal('bad signature');
    for (const junk of ['', 'not-a-jwt', 'a.b', 'a.b.c.d', '!!.??.**', 'x'.repeat(9000), 42, undefined]) {
      expect(await refusal(auth, junk), String(junk).slice(0, 12)).to.be.oneOf(['missing token', 'invalid token', 'malformed token']);
    }
  });

  it('refuses alg none and HS256/RS256 confusion: the key, not the token, picks the algorithm', async () => {
    const none = jwt.sign(personClaims(), '', { algorithm: 'none', keyid: 'default' } as jwt.SignOptions);
    expect(await refusal(auth, none)).to.equal('wrong algorithm for this key');
    const stripped = hs(personClaims()).split('.').slice(0, 2).join('.') + '.';
    expect(await refusal(auth, stripped)).to.equal('bad signature');

    // A hub that trusts an identity provider's RSA public key: an attacker HMACs a token with that public key as the secret.
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const publicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const idp = new Authenticator(new KeyRing([{ kid: 'idp', verify: { alg: 'RS256', publicKey: rsa.publicKey }, issuer: 'hoichan' }], null), { issuer: 'hoichan', maxTokenLifetime: 43200, maxAgentTokenLifetime: 2592000, clockSkew: 60 });
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'idp' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify(personClaims())).toString('base64url');
    const mac = createHmac('sha256', publicPem).update(`${header}.${payload}`).digest('base64url');
    expect(await refusal(idp, `${header}.${payload}.${mac}`)).to.equal('wrong algorithm for this key');
    // The genuine RS256 token from that provider verifies.
    const real = jwt.sign(personClaims(), rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { algorithm: 'RS256', keyid: 'idp' });
    expect(await idp.verify(real, 'signaling')).to.include({ sub: 'bs-lan' });
  });

  it('refuses a wrong issuer, an audience for another endpoint, and a role on the wrong endpoint', async () => {
    expect(await refusal(auth, hs(personClaims({ iss: 'someone-else' })))).to.equal('wrong issuer');
    expect(await refusal(auth, hs(personClaims({ aud: 'hoichan-api' })), 'signaling')).to.equal('token is not for the signaling endpoint');
    expect(await refusal(auth, hs(personClaims()), 'uplink')).to.equal('token is not for the uplink endpoint');
    // An agent claim set that (wrongly) also names the signaling audience still cannot use signaling.
    const agentEverywhere = personClaims({ role: 'agent', conf: undefined, conferences: ['hc-1'], aud: ['hoichan-uplink', 'hoichan-signaling'] });
    expect(await refusal(auth, hs(agentEverywhere), 'signaling')).to.equal('role agent may not use the signaling endpoint');
    const personOnUplink = personClaims({ aud: ['hoichan-uplink'] });
    expect(await refusal(auth, hs(personOnUplink), 'uplink')).to.equal('role specialist may not use the uplink endpoint');
  });

  it('refuses tokens without jti, iat or exp, lifetimes past the maximum, and iat in the future', async () => {
    expect(await refusal(auth, hs(personClaims({ jti: undefined })))).to.equal('invalid claims: jti');
    expect(await refusal(auth, jwt.sign(personClaims({ iat: undefined }), SECRET, { noTimestamp: true, keyid: 'default' }))).to.equal('invalid claims: iat');
    expect(await refusal(auth, hs(personClaims({ exp: undefined })))).to.equal('invalid claims: exp');
    expect(await refusal(auth, hs(personClaims({ exp: 32503680000 })))).to.equal('token lifetime exceeds the maximum');
    expect(await refusal(auth, hs(personClaims({ exp: now() + 12 * 3600 + 1 })))).to.equal('token lifetime exceeds the maximum');
    expect(await auth.verify(hs(personClaims({ exp: now() + 12 * 3600 })), 'signaling')).to.include({ sub: 'bs-lan' });
    expect(await refusal(auth, hs(personClaims({ iat: now() + 3600, exp: now() + 3700 })))).to.equal('token issued in the future');
    // Agents have their own, longer maximum.
    const agent = { ...personClaims({ role: 'agent', conf: undefined, conferences: ['hc-1'], aud: ['hoichan-uplink'] }) };
    expect(await auth.verify(hs({ ...agent, exp: now() + 30 * 24 * 3600 }), 'uplink')).to.include({ role: 'agent' });
    expect(await refusal(auth, hs({ ...agent, exp: now() + 30 * 24 * 3600 + 1 }), 'uplink')).to.equal('token lifetime exceeds the maximum');
    expect(() => auth.sign({ kind: 'person', sub: 'x', name: 'X', role: 'specialist', conf: 'c', ttlSeconds: 12 * 3600 + 1 })).to.throw(AuthError, /maxTokenLifetime/);
  });

  it("refuses '*' for site and specialist tokens and for agents, and agent tokens without conferences", async () => {
    expect(await refusal(auth, hs(personClaims({ conf: '*' })))).to.match(/^invalid claims: conf \(a specialist token must name one conference/);
    expect(await refusal(auth, hs(personClaims({ conf: '*', role: 'site' })))).to.match(/a site token must name one conference/);
    expect(await auth.verify(hs(personClaims({ conf: '*', role: 'engineer' })), 'api')).to.include({ role: 'engineer' });
    const agent = (extra: object) => hs({ ...personClaims({ role: 'agent', conf: undefined, aud: ['hoichan-uplink'] }), ...extra });
    expect(await refusal(auth, agent({ conferences: ['*'] }), 'uplink')).to.equal('invalid claims: conferences.0');
    expect(await refusal(auth, agent({ conferences: [] }), 'uplink')).to.equal('invalid claims: conferences');
    expect(await refusal(auth, agent({}), 'uplink')).to.equal('invalid claims: conferences');
    expect(() => auth.sign({ kind: 'person', sub: 'x', name: 'X', role: 'site', conf: '*', ttlSeconds: 60 })).to.throw(AuthError, /must name one conference/);
  });

  it('rotates keys by kid: the old kid verifies until removed, new tokens use signingKid', async () => {
    const auth = (keys: { kid: string; secret: string }[], signingKid: string) =>
      Authenticator.fromConfig(loadConfig({ env: {}, overrides: { auth: { keys: keys.map((k) => ({ ...k, alg: 'HS256' })), signingKid } } }).auth);
    const k1 = { kid: '2026-01', secret: 'first-secret-0123456789-0123456789-0123456789' };
    const k2 = { kid: '2026-07', secret: 'second-secret-0123456789-0123456789-012345678' };
    const before = auth([k1], '2026-01');
    const oldToken = before.sign({ kind: 'person', sub: 'bs-lan', name: 'BS Lan', role: 'specialist', conf: 'hc-1', ttlSeconds: 600 });
    const during = auth([k1, k2], '2026-07');
    const newToken = during.sign({ kind: 'person', sub: 'bs-lan', name: 'BS Lan', role: 'specialist', conf: 'hc-1', ttlSeconds: 600 });
    expect(JSON.parse(Buffer.from(newToken.split('.')[0]!, 'base64url').toString())).to.include({ alg: 'HS256', kid: '2026-07' });
    expect(await during.verify(oldToken, 'signaling')).to.include({ sub: 'bs-lan' });
    expect(await during.verify(newToken, 'signaling')).to.include({ sub: 'bs-lan' });
    // With two keys a token must say which one.
    expect(await refusal(during, hs(personClaims(), k1.secret, null))).to.equal('token has no kid');
    const after = auth([k2], '2026-07');
    expect(await refusal(after, oldToken)).to.equal('unknown key id');
    expect(await after.verify(newToken, 'signaling')).to.include({ sub: 'bs-lan' });
  });

  it('verifies RS256 and EdDSA tokens from an identity provider, with its own issuer, from key files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoichan-idp-'));
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ed = generateKeyPairSync('ed25519');
    writeFileSync(join(dir, 'rsa.pem'), rsa.publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(dir, 'ed.pem'), ed.publicKey.export({ type: 'spki', format: 'pem' }));
    const config = loadConfig({
      env: {},
      overrides: {
        auth: {
          keys: [
            { kid: 'idp-rsa', alg: 'RS256', publicKey: join(dir, 'rsa.pem'), issuer: 'https://sso.benhvien.example.vn' },
            { kid: 'idp-ed', alg: 'EdDSA', publicKey: ed.publicKey.export({ type: 'spki', format: 'pem' }) as string, issuer: 'https://sso.benhvien.example.vn' },
          ],
        },
      },
    });
    const hub = Authenticator.fromConfig(config.auth);
    const claims = personClaims({ iss: 'https://sso.benhvien.example.vn' });
    const rs = jwt.sign(claims, rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { algorithm: 'RS256', keyid: 'idp-rsa' });
    expect(await hub.verify(rs, 'signaling')).to.include({ sub: 'bs-lan' });
    const eddsa = signJws({ alg: 'EdDSA', privateKey: ed.privateKey }, 'idp-ed', claims);
    expect(await hub.verify(eddsa, 'signaling')).to.include({ sub: 'bs-lan' });
    // Wrong issuer for that key, a token signed by another key pair under the same kid, and kid/alg crossed.
    expect(await refusal(hub, signJws({ alg: 'EdDSA', privateKey: ed.privateKey }, 'idp-ed', personClaims()))).to.equal('wrong issuer');
    expect(await refusal(hub, signJws({ alg: 'EdDSA', privateKey: generateKeyPairSync('ed25519').privateKey }, 'idp-ed', claims))).to.equal('bad signature');
    expect(await refusal(hub, signJws({ alg: 'EdDSA', privateKey: ed.privateKey }, 'idp-rsa', claims))).to.equal('wrong algorithm for this key');
    // The hub only verifies: without a private key it cannot mint.
    expect(() => hub.sign({ kind: 'person', sub: 'x', name: 'X', role: 'site', conf: 'c', ttlSeconds: 60 })).to.throw(/no key to sign with/);
  });

  it('reports refusals on events, without the token', async () => {
    const seen: AuthRefused[] = [];
    auth.events.on('refused', (e) => seen.push(e));
    const token = hs(personClaims({ iss: 'evil' }));
    await refusal(auth, token);
    auth.events.removeAllListeners('refused');
    expect(seen).to.deep.equal([{ endpoint: 'signaling', reason: 'wrong issuer', sub: 'bs-lan', jti: 'jti-0123456789' }]);
    // An unsigned or foreign token says nothing about who it claims to be.
    seen.length = 0;
    auth.events.on('refused', (e) => seen.push(e));
    await refusal(auth, hs(personClaims(), 'another-secret-0123456789-0123456789-0123'));
    auth.events.removeAllListeners('refused');
    expect(seen).to.deep.equal([{ endpoint: 'signaling', reason: 'bad signature' }]);
    expect(JSON.stringify(seen)).to.not.include(token.split('.')[2]);
  });

  describe('revocation', () => {
    it('refuses a revoked jti and every token of a revoked subject issued before the cut-off', async () => {
      const auth = Authenticator.forSecret(SECRET);
      const a = auth.sign({ kind: 'person', sub: 'bs-lan', name: 'BS Lan', role: 'specialist', conf: 'hc-1', ttlSeconds: 600 });
      const b = auth.sign({ kind: 'person', sub: 'bs-lan', name: 'BS Lan', role: 'specialist', conf: 'hc-1', ttlSeconds: 600 });
      const other = auth.sign({ kind: 'agent', siteId: 'tram-1', name: 'Tram 1', conferences: ['hc-1'], ttlSeconds: 600 });
      const ca = await auth.verify(a, 'signaling');
      await auth.revoke(auth.revocationOfToken(ca));
      expect(await refusal(auth, a)).to.equal('token revoked');
      expect(await auth.verify(b, 'signaling')).to.include({ sub: 'bs-lan' });
      await auth.revoke(auth.revocationOfSubject('tram-1'));
      expect(await refusal(auth, other, 'uplink')).to.equal('token revoked');
      // A token issued after the cut-off is good again.
      const cutoff = (auth.revocations as MemoryRevocations).has({ jti: 'new', sub: 'tram-1', iat: now() + 5 });
      expect(cutoff).to.equal(false);
    });

    it('reads a JSON-lines file, and picks up lines appended later (file change and SIGHUP); bad lines are skipped', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'hoichan-revoked-'));
      const path = join(dir, 'revoked.jsonl');
      writeFileSync(path, `${JSON.stringify({ jti: 'jti-aaaaaaaa', until: now() + 600 })}\nnot json\n{"jti": 5}\n`);
      const store = await FileRevocations.open(path, 50);
      try {
        const auth = new Authenticator(KeyRing.fromConfig(loadConfig({ env: { HOICHAN_JWT_SECRET: SECRET } }).auth), { issuer: 'hoichan', maxTokenLifetime: 43200, maxAgentTokenLifetime: 2592000, clockSkew: 60 }, store);
        expect(await refusal(auth, hs(personClaims({ jti: 'jti-aaaaaaaa' })))).to.equal('token revoked');
        expect(await auth.verify(hs(personClaims({ jti: 'jti-bbbbbbbb' })), 'signaling')).to.include({ sub: 'bs-lan' });
        const revoked: unknown[] = [];
        auth.events.on('revoked', (e) => revoked.push(e));
        // A cut-off an hour ahead, so the check below does not depend on how long the reload takes.
        const before = now() + 3600;
        appendFileSync(path, JSON.stringify({ sub: 'bs-lan', before, until: now() + 7200 }) + '\n');
        await waitUntil(async () => (await store.isRevoked({ jti: 'x', sub: 'bs-lan', iat: now() })) === true, 10_000, 'the appended line to be read');
        expect(revoked).to.deep.include({ sub: 'bs-lan', before });
        // SIGHUP reloads too (the poller is slow on purpose here: a second store with a long interval).
        const slow = await FileRevocations.open(path, 3_600_000);
        try {
          appendFileSync(path, JSON.stringify({ jti: 'jti-cccccccc', until: now() + 600 }) + '\n');
          process.kill(process.pid, 'SIGHUP');
          await waitUntil(async () => slow.isRevoked({ jti: 'jti-cccccccc', sub: 'x', iat: now() }), 10_000, 'SIGHUP reload');
        } finally {
          await slow.close();
        }
      } finally {
        await store.close();
      }
    });

    it('shares revocations through Redis, with the entry expiring with the token, and tells every hub', async () => {
      const redis = await TestRedis.start();
      const hubA = await RedisRevocations.connect(redis.url);
      const hubB = await RedisRevocations.connect(redis.url);
      const cli = await RedisRevocations.connect(redis.url, { listen: false });
      try {
        const heard: unknown[] = [];
        hubB.on('changed', (added) => heard.push(...added));
        await cli.add({ jti: 'jti-dddddddd', until: now() + 600 });
        await cli.add({ sub: 'tram-2', before: now(), until: now() + 600 });
        expect(await hubA.isRevoked({ jti: 'jti-dddddddd', sub: 'x', iat: now() })).to.equal(true);
        expect(await hubA.isRevoked({ jti: 'jti-eeeeeeee', sub: 'tram-2', iat: now() - 10 })).to.equal(true);
        expect(await hubA.isRevoked({ jti: 'jti-eeeeeeee', sub: 'tram-2', iat: now() + 10 })).to.equal(false);
        expect(await hubA.isRevoked({ jti: 'jti-eeeeeeee', sub: 'someone', iat: now() })).to.equal(false);
        await waitUntil(() => heard.length === 2, 10_000, 'the revocation notices');
        await cli.add({ jti: 'jti-ffffffff', until: now() - 1 });
        expect(await hubA.isRevoked({ jti: 'jti-ffffffff', sub: 'x', iat: now() })).to.equal(false);
      } finally {
        await Promise.all([hubA.close(), hubB.close(), cli.close()]);
        await redis.stop();
      }
    });

    it('while Redis is down, answers from its copy within auth.revocationMaxStaleness (stale, for the audit), then fails closed; writes back what Redis lacks when it returns', async () => {
      let redis = await TestRedis.start();
      const hub = await RedisRevocations.connect(redis.url, { maxStalenessMs: 1500, syncMs: 200 });
      const cli = await RedisRevocations.connect(redis.url, { listen: false });
      const somebody = { jti: 'jti-11111111', sub: 'bs-an', iat: now() };
      const gone = { jti: 'jti-22222222', sub: 'bs-binh', iat: now() };
      const local = { jti: 'jti-33333333', sub: 'bs-chi', iat: now() };
      try {
        await cli.add({ jti: gone.jti, until: now() + 600 });
        await waitUntil(async () => (await hub.check(gone)).revoked, 5000, 'the revocation through Redis');
        expect(await hub.check(somebody)).to.deep.equal({ revoked: false });
        const port = redis.port;
        await redis.stop();
        const stale = await hub.check(somebody);
        expect(stale.revoked).to.equal(false);
        expect(stale.staleMs).to.be.a('number').and.at.most(1500);
        expect((await hub.check(gone)).revoked, 'revoked before the outage').to.equal(true);
        // Made here during the outage: applies here at once.
        const heard: unknown[] = [];
        hub.on('changed', (added) => heard.push(...added));
        await hub.add({ jti: local.jti, until: now() + 600 });
        expect(heard).to.have.length(1);
        expect((await hub.check(local)).revoked).to.equal(true);
        await waitUntil(async () => {
          try {
            await hub.check(somebody);
            return false;
          } catch (err) {
            return /past auth\.revocationMaxStaleness/.test((err as Error).message);
          }
        }, 5000, 'the copy aging past the bound');
        // Back, empty (no persistence): the hub writes its copy back, the entry made during the outage included.
        redis = await TestRedis.start(port);
        await waitUntil(async () => (await cli.isRevoked(local).catch(() => false)) && (await cli.isRevoked(gone).catch(() => false)), 10_000, 'the copy written back to Redis');
        expect(await hub.check(somebody)).to.deep.equal({ revoked: false });
      } finally {
        await Promise.all([hub.close(), cli.close()]);
        await redis.stop();
      }
    });
  });
});
