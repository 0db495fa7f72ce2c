import { parseArgs, type ParseArgsConfig } from 'node:util';
// Everything else is imported by the command that needs it: `hoichan agent`
// starts (and its serial devices resume) without loading the hub's config,
// mediasoup or jsonwebtoken.
import type { Authenticator, Revocation } from '../auth/index.js';
import type { HoichanConfig } from '../config/schema.js';
import type { Role } from '../contract/conference.js';
import type { Hub } from '../hub/Hub.js';

interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<void>;
}

const configOption = { config: { type: 'string' as const, short: 'c' } };

async function simulate(argv: string[]): Promise<void> {
  const { simulatorCommands } = await import('../sim/index.js');
  const [kind, ...rest] = argv;
  const list = [...simulatorCommands.values()].map((c) => `  ${c.kind.padEnd(12)} ${c.summary}`).join('\n');
  if (!kind || kind === '--help' || kind === '-h') {
    console.log(`usage: hoichan simulate <kind> [options]\n\n${list}\n\nRun 'hoichan simulate <kind> --help' for its options.`);
    return;
  }
  const command = simulatorCommands.get(kind);
  if (!command) throw new UsageError(`unknown simulator '${kind}'; one of:\n${list}`);
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.usage);
    return;
  }
  let running;
  try {
    running = await command.start(rest);
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${command.usage}`);
  }
  running.on('error', (err) => console.error(`hoichan simulate ${kind}: ${err.message}`));
  console.error(`hoichan simulate ${kind}: running; Ctrl-C to stop`);
  stopOnSignal(() => running.stop());
}

const commands: Record<string, Command> = {
  hub: {
    summary: 'run the conference hub (SFU, signaling, HTTP API and web client)',
    usage: `hoichan hub [--config FILE] [--demo] [--region R]

  --config, -c FILE  JSON file merged over config/default.json (also HOICHAN_CONFIG)
  --demo             demo mode: allows the built-in, public JWT secret; never in a hospital
  --region R         the region this hub serves in a cluster (cluster.region, HOICHAN_REGION;
                     docs/SCALING.md); a cluster needs REDIS_URL

Environment: HOICHAN_PORT, HOICHAN_HTTP_LISTEN_IP (HTTP), HOICHAN_LISTEN_IP (media),
HOICHAN_ANNOUNCED_IP, HOICHAN_RTC_PORT, HOICHAN_WORKERS, HOICHAN_JWT_SECRET,
HOICHAN_SIGNING_KID, HOICHAN_TOKEN_ISSUER, HOICHAN_REVOCATION_FILE,
HOICHAN_TLS_CERT, HOICHAN_TLS_KEY, REDIS_URL, HOICHAN_HUB_ID, HOICHAN_REGION,
HOICHAN_PUBLIC_URL, MEDIASOUP_WORKER_BIN, HOICHAN_LOG_LEVEL.`,
    options: { ...configOption, demo: { type: 'boolean' }, region: { type: 'string' } },
    async run(values) {
      const { loadConfig } = await import('../config/load.js');
      const overrides = {
        ...(values.demo ? { auth: { demo: true } } : {}),
        ...(typeof values.region === 'string' ? { cluster: { region: values.region } } : {}),
      };
      const config = loadConfig({ file: values.config as string | undefined, overrides });
      const { Hub } = await import('../hub/Hub.js');
      const hub = await Hub.start(config);
      // A cluster hub drains first (cluster.drainTimeoutMs); a second signal stops it at once.
      stopOnSignal(() => hub.shutdown());
    },
  },
  agent: {
    summary: 'run a site agent: device drivers, durable journal, uplink to the hub (docs/AGENT.md)',
    usage: `hoichan agent --config SITE.json

  --config, -c FILE  site config: siteId, conferenceId, hub (url, token or tokenFile, ...),
                     journal (dir, fsync, maxBytes, ...), devices. See docs/AGENT.md.

Environment: HOICHAN_LOG_LEVEL.`,
    options: { ...configOption },
    async run(values) {
      const file = values.config as string | undefined;
      if (!file) throw new UsageError('--config is required');
      const { loadAgentConfig } = await import('../agent/config.js');
      const { SiteConfigError } = await import('../devices/siteConfig.js');
      const { SiteAgent } = await import('../agent/SiteAgent.js');
      let agentConfig;
      try {
        agentConfig = await loadAgentConfig(file);
      } catch (err) {
        if (err instanceof SiteConfigError || (err as NodeJS.ErrnoException).code === 'ENOENT') throw new UsageError((err as Error).message);
        throw err;
      }
      const agent = await SiteAgent.start(agentConfig);
      stopOnSignal(() => agent.stop());
    },
  },
  demo: {
    summary: 'run a hub in demo mode and print links to open a demo conference',
    usage: `hoichan demo [--config FILE] [--conference ID]

Starts the hub in demo mode (public JWT secret), a site agent streaming four
simulated devices (HL7 monitor, Cyton ECG, CMS50 oximeter, OPC UA monitor)
through the uplink into the conference, a simulated ultrasound over an RTP
ingest, and prints ready-to-open links for a specialist, the site and an engineer.`,
    options: { ...configOption, conference: { type: 'string' } },
    async run(values) {
      // HTTP and media on loopback unless chosen (src/demo/bind.ts: the demo secret is public).
      const { demoBinding } = await import('../demo/bind.js');
      const binding = demoBinding(process.env, values.config as string | undefined);
      const { loadConfig } = await import('../config/load.js');
      const config = loadConfig({ file: values.config as string | undefined, overrides: { auth: { demo: true }, ...binding.overrides } });
      const { Hub } = await import('../hub/Hub.js');
      const hub: Hub = await Hub.start(config);
      const conference = (values.conference as string | undefined) ?? 'demo';
      const tokenFor = (role: Role, name: string) =>
        hub.auth.sign({ kind: 'person', sub: `${role}-${name}`.toLowerCase().replace(/\W+/g, '-'), name, role, conf: role === 'engineer' ? '*' : conference, ttlSeconds: config.auth.maxTokenLifetime });
      console.log(`\nHoichan demo hub at ${hub.url} (conference "${conference}")\n`);
      // The token goes in the fragment: never sent to the hub, and the page takes it out of the address bar (docs/WEB.md).
      console.log(`Specialist (open this one): ${hub.url}/conference/${conference}#token=${tokenFor('specialist', 'Dr Lan')}\n`);
      console.log(`Remote site: ${hub.url}/site/${conference}#token=${tokenFor('site', 'Tram Y te Xa')}\n`);
      console.log(`Engineer (operations): ${hub.url}/ops#token=${tokenFor('engineer', 'Ops')}\n`);
      if (binding.loopback.http || binding.loopback.media) {
        console.log(
          'HTTP and media are on 127.0.0.1 (a browser on this machine): the demo secret is public, so anyone who reaches the\n' +
            'hub can mint tokens. To let other machines join a demo on a trusted network, set HOICHAN_HTTP_LISTEN_IP=0.0.0.0\n' +
            'and HOICHAN_LISTEN_IP=0.0.0.0 (README, "Opening the demo from another machine").\n',
        );
      }
      const { startDemoSite } = await import('../demo/index.js');
      const site = await startDemoSite(hub.url, hub.auth, conference);
      if (site) console.log(`Site agent: ${site.agent.registry.devices().length} simulated devices and an ultrasound streaming into "${conference}"\n`);
      stopOnSignal(async () => {
        await site?.stop();
        await hub.close();
      });
    },
  },
  ingest: {
    summary: 'send a capture device\'s video (ultrasound, device video) into a conference over RTP',
    usage: `hoichan ingest --hub URL --token TOKEN --conference ID --device ID [options]

  --hub URL          the hub, e.g. https://hub.example.vn
  --token TOKEN      a site token for the conference (hoichan token --role site ...)
  --conference ID    conference to send into
  --device ID        the capture device's id, e.g. us-1
  --name TEXT        shown to viewers (default: 'Ultrasound <device>')
  --source S         ultrasound (default) | device-video
  --codec C          VP8 (default) | H264 (baseline, packetization-mode 1)
  --no-srtp          plain RTP: only on a trusted LAN, and only if the hub allows it
                     (media.ingestRequireSrtp false); SRTP is the default. The SRTP key
                     reaches ffmpeg through a private FIFO, never its command line
  --input ARGS       ffmpeg input arguments, e.g. "-f v4l2 -i /dev/video0" (default: a simulated ultrasound)
  --bitrate KBPS     video bitrate (default 1200)

Opens an ingest on the hub (POST /api/conferences/ID/ingests), runs ffmpeg
towards it, and opens a new one if the hub loses it.`,
    options: {
      hub: { type: 'string' },
      token: { type: 'string' },
      conference: { type: 'string' },
      device: { type: 'string' },
      name: { type: 'string' },
      source: { type: 'string' },
      codec: { type: 'string' },
      'no-srtp': { type: 'boolean' },
      input: { type: 'string' },
      bitrate: { type: 'string' },
    },
    async run(values) {
      const required = ['hub', 'token', 'conference', 'device'] as const;
      for (const key of required) if (!values[key]) throw new UsageError(`--${key} is required`);
      const source = (values.source as string | undefined) ?? 'ultrasound';
      if (source !== 'ultrasound' && source !== 'device-video') throw new UsageError('--source must be ultrasound or device-video');
      const codec = ((values.codec as string | undefined) ?? 'VP8').toUpperCase();
      if (codec !== 'VP8' && codec !== 'H264') throw new UsageError('--codec must be VP8 or H264');
      const bitrate = values.bitrate === undefined ? 1200 : Number(values.bitrate);
      if (!Number.isInteger(bitrate) || bitrate < 100) throw new UsageError('--bitrate must be a whole number of kb/s, at least 100');
      const { IngestSender } = await import('../devices/video/IngestSender.js');
      const sender = new IngestSender({
        hubUrl: (values.hub as string).replace(/\/$/, ''),
        token: values.token as string,
        conferenceId: values.conference as string,
        deviceId: values.device as string,
        displayName: values.name as string | undefined,
        source,
        codec,
        srtp: !values['no-srtp'],
        input: values.input ? (values.input as string).split(/\s+/).filter(Boolean) : undefined,
        bitrateKbps: bitrate,
      });
      sender.on('error', (err) => console.error(`hoichan ingest: ${err.message}`));
      const info = await sender.start();
      console.error(`hoichan ingest: sending ${codec} to ${info.ip}:${info.port}${info.srtp ? ' (SRTP)' : ''} as ${info.ingestId}`);
      stopOnSignal(() => sender.stop());
    },
  },
  'link-emulator': {
    summary: 'relay ports on loopback that put an emulated thin link (3G, satellite, EDGE, outages) in front of a hub',
    usage: `hoichan link-emulator --profile NAME [--udp HOST:PORT,...] [--tcp HOST:PORT,...] [options]

  --profile NAME     commune-3g | island-satellite | edge | flaky (docs/LINKS.md)
  --udp LIST         UDP targets to relay, e.g. the hub's WebRtcServer port 127.0.0.1:40000
  --tcp LIST         TCP targets to relay, e.g. the hub's HTTP port and its WebRtcServer TCP port
  --seed N           seed of the loss and jitter draws (default 1)
  --no-outages       ignore the profile's outage schedule
  --block-udp        drop every datagram (a network that blocks UDP: ICE must use TCP)

Prints one relay port per target. Every relay shares the one emulated link,
as one modem carries a site's media, signaling and uplink. A browser reaches
the hub's media through it only if its ICE candidates point at the relay
(the tests rewrite them in the page; test/support/linkedSite.ts). Loopback
only: for tests, benches and trying a thin link by hand.`,
    options: {
      profile: { type: 'string' },
      udp: { type: 'string' },
      tcp: { type: 'string' },
      seed: { type: 'string' },
      'no-outages': { type: 'boolean' },
      'block-udp': { type: 'boolean' },
    },
    async run(values) {
      if (!values.profile) throw new UsageError('--profile is required');
      const { linkProfile } = await import('../links/profiles.js');
      const { LinkEmulator } = await import('../links/LinkEmulator.js');
      let profile;
      try {
        profile = linkProfile(values.profile as string);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      const targets = (key: 'udp' | 'tcp') =>
        ((values[key] as string | undefined) ?? '')
          .split(',')
          .filter(Boolean)
          .map((entry) => {
            const match = /^(.+):(\d{1,5})$/.exec(entry);
            const port = Number(match?.[2]);
            if (!match || port < 1 || port > 65535) throw new UsageError(`--${key}: '${entry}' is not HOST:PORT`);
            return { host: match[1]!, port };
          });
      const udp = targets('udp');
      const tcp = targets('tcp');
      if (udp.length + tcp.length === 0) throw new UsageError('give at least one --udp or --tcp target');
      const seed = values.seed === undefined ? 1 : Number(values.seed);
      if (!Number.isInteger(seed)) throw new UsageError('--seed must be an integer');
      const link = new LinkEmulator({ profile, seed, ...(values['no-outages'] ? { outages: null } : {}) });
      link.blockUdp = values['block-udp'] === true;
      for (const t of udp) console.log(`udp 127.0.0.1:${await link.relayUdp(t)} -> ${t.host}:${t.port}`);
      for (const t of tcp) console.log(`tcp 127.0.0.1:${await link.relayTcp(t)} -> ${t.host}:${t.port}`);
      console.error(`hoichan link-emulator: ${profile.description}; Ctrl-C to stop`);
      stopOnSignal(async () => {
        console.error(JSON.stringify(link.stats()));
        link.close();
      });
    },
  },
  audit: {
    summary: 'check the hub\'s audit log: hoichan audit verify (exit 1 on a broken chain)',
    usage: `hoichan audit verify [--dir DIR] [--config FILE]

  --dir DIR          the audit directory (default: audit.dir of the config)
  --config, -c FILE  JSON file merged over config/default.json (also HOICHAN_CONFIG)

Walks every day file in order and checks each record's hash, that seqs rise by
one, that each prevHash is the hash before it, and that the chain starts at the
beginning or where an audit.pruned record says retention cut it. Prints the
first broken record (file, line, seq, why) and exits 1, or the head to anchor.
A log written with audit.hmacKey needs the key: HOICHAN_AUDIT_HMAC_KEY.`,
    options: { ...configOption, dir: { type: 'string' } },
    async run(values, positionals) {
      if (positionals[0] !== 'verify' || positionals.length !== 1) throw new UsageError('usage: hoichan audit verify [--dir DIR] [--config FILE]');
      let dir = values.dir as string | undefined;
      let key = process.env.HOICHAN_AUDIT_HMAC_KEY || null;
      if (!dir) {
        // Only the audit section matters here; demo mode keeps the hub's secret checks from refusing the file.
        const { loadConfig } = await import('../config/load.js');
        const config = loadConfig({ file: values.config as string | undefined, overrides: { auth: { demo: true } } });
        dir = config.audit.dir;
        key = config.audit.hmacKey;
      }
      const { resolve } = await import('node:path');
      const { verifyAuditDir } = await import('../audit/files.js');
      const result = await verifyAuditDir(resolve(dir), key);
      if (result.files === 0) throw new UsageError(`no audit files (audit-YYYY-MM-DD.jsonl) in ${resolve(dir)}`);
      if (result.tornTail) console.log(`note: ${result.tornTail.file} ends in ${result.tornTail.bytes} bytes of a partial line (a write in progress, or a crash; the hub cuts it off at its next start)`);
      if (!result.ok && result.broken) {
        const b = result.broken;
        console.log(`audit log BROKEN at ${b.file} line ${b.line}${b.seq !== undefined ? ` (seq ${b.seq})` : ''}: ${b.reason}`);
        console.log(`${result.records} records verified before it`);
        process.exitCode = 1;
        return;
      }
      console.log(`audit log OK: ${result.records} records in ${result.files} files, seq ${result.firstSeq}..${result.head?.seq}`);
      console.log(`head: seq ${result.head?.seq} hash ${result.head?.hash}`);
    },
  },
  loadtest: {
    summary: 'synthetic WebRTC publishers and subscribers against a hub: loss, jitter, bitrate, join times (docs/LOADTEST.md)',
    usage: `hoichan loadtest --hub URL (--token-secret S | --tokens FILE) --conference C [options]

  --hub URL            the hub, e.g. https://hub.example.vn (its signaling and WebRTC ports must be reachable)
  --token-secret S     the hub's auth.jwtSecret: each client gets its own specialist token for the
                       conference (or set HOICHAN_JWT_SECRET instead, to keep it out of ps)
  --token-issuer ISS   iss of the minted tokens: the hub's auth.issuer (default hoichan)
  --tokens FILE        instead of a secret: JWTs, one per line, taken by the clients in turn
  --conference C       the conference to load (use one nobody else is in)
  --publishers P       clients that send video and audio (default 1, at most 50)
  --subscribers N      clients that consume every producer (default 10, at most 1000)
  --duration D         how long media flows after the last client joined: 60s (default), 2m; at most 3600s
  --video CODEC        vp8 (default) | h264 (constrained baseline, packetization-mode 1); 720p 1.5 Mb/s, 30 fps
  --audio-only         publishers send opus only
  --join-rate R        clients started per second, e.g. 10/s (default), 0.1/s..100/s
  --simulcast          publishers send three layers (320x180 150 kb/s, 640x360 500 kb/s, 1280x720
                       1.5 Mb/s, one SSRC each); subscribers get the layer the hub forwards
  --last-n K           subscribers ask the hub for last-N: video of the K most recent speakers only
                       (setVideoPreferences; the others' video is paused on the hub and counts as silent)
  --json               print the report as JSON on stdout (progress still goes to stderr)

Each client is a real WebRTC peer (libdatachannel: ICE, DTLS, SRTP) speaking the hub's
signaling (docs/PROTOCOL.md). Publishers loop a pre-encoded clip (made once with ffmpeg
into ~/.cache/hoichan/loadtest) and answer NACKs and keyframe requests; subscribers
send receiver reports, NACKs and PLIs like a browser. Prints a progress line every 2 s
and, at the end, per track type: packets, bitrate, loss, jitter, NACKs and PLIs sent;
join time p50/p99 and failures; and its own CPU (near 100 % means the generator, not the
hub, may be the limit). Stops by itself; Ctrl-C stops early and reports what it measured.
Exit status 1 when any client failed.`,
    options: {
      hub: { type: 'string' },
      'token-secret': { type: 'string' },
      'token-issuer': { type: 'string' },
      tokens: { type: 'string' },
      conference: { type: 'string' },
      publishers: { type: 'string' },
      subscribers: { type: 'string' },
      duration: { type: 'string' },
      video: { type: 'string' },
      'audio-only': { type: 'boolean' },
      'join-rate': { type: 'string' },
      simulcast: { type: 'boolean' },
      'last-n': { type: 'string' },
      json: { type: 'boolean' },
    },
    async run(values) {
      const { runLoadtest, parseDuration, parseRate, LoadtestOptionError } = await import('../loadtest/run.js');
      const { formatReport } = await import('../loadtest/report.js');
      if (!values.hub) throw new UsageError('--hub is required');
      if (!values.conference) throw new UsageError('--conference is required');
      const whole = (name: string, fallback: number) => {
        const text = values[name] as string | undefined;
        if (text === undefined) return fallback;
        if (!/^\d+$/.test(text)) throw new UsageError(`--${name} must be a whole number`);
        return Number(text);
      };
      const video = ((values.video as string | undefined) ?? 'vp8').toLowerCase();
      if (video !== 'vp8' && video !== 'h264') throw new UsageError('--video must be vp8 or h264');
      const tokenSecret = (values['token-secret'] as string | undefined) ?? (values.tokens ? undefined : process.env.HOICHAN_JWT_SECRET || undefined);
      const abort = new AbortController();
      const onSignal = () => {
        if (abort.signal.aborted) process.exit(1);
        console.error('hoichan loadtest: stopping early, closing every client');
        abort.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      let report;
      try {
        report = await runLoadtest(
          {
            hubUrl: (values.hub as string).replace(/\/$/, ''),
            conferenceId: values.conference as string,
            tokenSecret,
            tokenIssuer: values['token-issuer'] as string | undefined,
            tokensFile: values.tokens as string | undefined,
            publishers: whole('publishers', 1),
            subscribers: whole('subscribers', 10),
            durationSeconds: parseDuration((values.duration as string | undefined) ?? '60s'),
            video,
            audioOnly: values['audio-only'] === true,
            simulcast: values.simulcast === true,
            joinRate: parseRate((values['join-rate'] as string | undefined) ?? '10/s'),
            ...(values['last-n'] !== undefined ? { lastN: whole('last-n', 4) } : {}),
          },
          { onProgress: (line) => console.error(line), signal: abort.signal },
        );
      } catch (err) {
        if (err instanceof LoadtestOptionError) throw new UsageError(err.message);
        throw err;
      }
      console.log(values.json ? JSON.stringify(report, null, 2) : formatReport(report));
      // libdatachannel's threads keep the process alive until told to stop.
      const nodeDataChannel = await import('node-datachannel');
      nodeDataChannel.cleanup();
      process.exit(report.failures.total > 0 ? 1 : 0);
    },
  },
  token: {
    summary: 'print a signed access token (JWT) for a person or a site agent, or revoke tokens',
    usage: `hoichan token --role specialist|site|engineer --conference ID --name NAME [--site SITE_ID] [--sub ID] [--ttl SECONDS]
hoichan token --role agent --site SITE_ID --conference ID [--conference ID ...] [--device ID ...] [--ttl SECONDS]
hoichan token revoke (--jti ID [--until EPOCH_S] | --token TOKEN | --sub ID [--before EPOCH_S])
  Common options: [--config FILE] [--demo]

People (signaling and the HTTP API; lifetime at most auth.maxTokenLifetime, default 12 h):
  --role        specialist | site | engineer
  --conference  one conference id; '*' (every conference) only for engineer, who never joins media
  --name        display name carried in the token: the name the conference sees
  --sub         user id (default: derived from role and name)

Site agents (the /uplink only; lifetime at most auth.maxAgentTokenLifetime, default 30 days):
  --role agent
  --site        the site id: an agent's siteId (its token's sub); for a person, the site they join from (recorded)
  --conference  a conference its devices stream into; repeat for several; no '*'
  --device      optional: only these device ids may be announced; repeat for several

  --ttl         lifetime in seconds (default: the maximum for the role)
  --demo        sign with the public demo secret (for the demo hub only)

revoke: adds to auth.revocationFile (HOICHAN_REVOCATION_FILE) and to Redis when
REDIS_URL is set; hubs cut live sockets of the revoked tokens.
  --jti ID      one token (its jti); kept until --until or the longest token lifetime from now
  --token T     one token, read for its jti and exp (the token need not be valid)
  --sub ID      every token of this user or site issued before --before (default: now)

Signs with auth.signingKid's key (or auth.jwtSecret, HOICHAN_JWT_SECRET); see docs/SECURITY.md.`,
    options: {
      ...configOption,
      role: { type: 'string' },
      conference: { type: 'string', multiple: true },
      device: { type: 'string', multiple: true },
      site: { type: 'string' },
      name: { type: 'string' },
      sub: { type: 'string' },
      ttl: { type: 'string' },
      demo: { type: 'boolean' },
      jti: { type: 'string' },
      until: { type: 'string' },
      token: { type: 'string' },
      before: { type: 'string' },
    },
    async run(values, positionals) {
      const { loadConfig } = await import('../config/load.js');
      const { Authenticator, KeyRing } = await import('../auth/index.js');
      const config = loadConfig({ file: values.config as string | undefined, overrides: values.demo ? { auth: { demo: true } } : undefined });
      const auth = new Authenticator(KeyRing.fromConfig(config.auth), config.auth);
      if (positionals[0] === 'revoke') {
        await revokeCommand(auth, config, values);
        return;
      }
      if (positionals.length > 0) throw new UsageError(`unexpected '${positionals[0]}'; did you mean 'hoichan token revoke'?`);
      const role = values.role as string | undefined;
      const conferences = (values.conference as unknown as string[] | undefined) ?? [];
      const ttl = values.ttl === undefined ? undefined : Number(values.ttl);
      if (ttl !== undefined && (!Number.isInteger(ttl) || ttl <= 0)) throw new UsageError('--ttl must be a positive number of seconds');
      if (role === 'agent') {
        const siteId = values.site as string | undefined;
        if (!siteId) throw new UsageError('--site is required for an agent token');
        if (conferences.length === 0) throw new UsageError('--conference is required (repeat it for several conferences)');
        if (conferences.includes('*')) throw new UsageError("an agent token lists its conferences; '*' is not allowed");
        const devices = values.device as unknown as string[] | undefined;
        const name = (values.name as string | undefined) ?? `Site agent ${siteId}`;
        process.stdout.write(auth.sign({ kind: 'agent', siteId, name, conferences, ...(devices?.length ? { devices } : {}), ttlSeconds: ttl ?? auth.options.maxAgentTokenLifetime }) + '\n');
        return;
      }
      if (role !== 'specialist' && role !== 'site' && role !== 'engineer') throw new UsageError('--role must be specialist, site, engineer or agent');
      if (values.device) throw new UsageError('--device is for --role agent');
      const site = values.site as string | undefined;
      const name = values.name as string | undefined;
      if (conferences.length !== 1) throw new UsageError('--conference is required, once: a person token is for one conference');
      if (!name) throw new UsageError('--name is required');
      const conf = conferences[0]!;
      if (conf === '*' && role !== 'engineer') throw new UsageError(`a ${role} token must name one conference; only engineer may have '*'`);
      const sub = (values.sub as string | undefined) ?? `${role}-${name}`.toLowerCase().replace(/\W+/g, '-');
      process.stdout.write(auth.sign({ kind: 'person', sub, name, role, conf, ...(site ? { site } : {}), ttlSeconds: ttl ?? auth.options.maxTokenLifetime }) + '\n');
    },
  },
};

class UsageError extends Error {}

const epochSeconds = (text: unknown, flag: string): number | undefined => {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${flag} must be a time in seconds since 1970 (date +%s)`);
  return n;
};

/** `hoichan token revoke`: one entry into the revocation file and/or Redis, whichever the hub reads. */
async function revokeCommand(auth: Authenticator, config: HoichanConfig, values: Record<string, unknown>): Promise<void> {
  const { RedisRevocations, appendRevocation } = await import('../auth/index.js');
  const { decodeJws } = await import('../auth/jws.js');
  const chosen = ['jti', 'token', 'sub'].filter((k) => values[k] !== undefined);
  if (chosen.length !== 1) throw new UsageError('give exactly one of --jti, --token or --sub');
  let revocation: Revocation;
  if (values.sub !== undefined) {
    revocation = auth.revocationOfSubject(values.sub as string, epochSeconds(values.before, 'before'));
  } else if (values.token !== undefined) {
    let payload: unknown;
    try {
      payload = decodeJws(values.token as string).payload;
    } catch {
      throw new UsageError('--token is not a JWT');
    }
    const { jti, exp } = (payload ?? {}) as { jti?: unknown; exp?: unknown };
    if (typeof jti !== 'string' || typeof exp !== 'number') throw new UsageError('--token has no jti or exp: the hub refuses it anyway');
    revocation = auth.revocationOfToken({ jti, exp });
  } else {
    const until = epochSeconds(values.until, 'until') ?? Math.floor(Date.now() / 1000) + Math.max(config.auth.maxTokenLifetime, config.auth.maxAgentTokenLifetime);
    revocation = { jti: values.jti as string, until };
  }
  const file = config.auth.revocationFile;
  const redisUrl = config.redis.url;
  if (!file && !redisUrl) throw new UsageError('nowhere to write: set auth.revocationFile (HOICHAN_REVOCATION_FILE) or REDIS_URL, as the hub has them');
  if (file) await appendRevocation(file, revocation);
  if (redisUrl) {
    const redis = await RedisRevocations.connect(redisUrl, { listen: false });
    try {
      await redis.add(revocation);
    } finally {
      await redis.close();
    }
  }
  process.stdout.write(JSON.stringify(revocation) + '\n');
}

function stopOnSignal(stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    console.error(`hoichan: ${signal}, shutting down`);
    stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

function topHelp(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  lines.push(`  ${'simulate'.padEnd(10)} run a simulated medical device (mindray-hl7, cyton, cms50, opcua)`);
  return `usage: hoichan <command> [options]\n\n${lines.join('\n')}\n\nRun 'hoichan <command> --help' for a command's options.`;
}

export async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(topHelp());
    return;
  }
  if (name === 'simulate') {
    try {
      await simulate(rest);
    } catch (err) {
      console.error(`hoichan simulate: ${(err as Error).message}`);
      process.exitCode = err instanceof UsageError ? 2 : 1;
    }
    return;
  }
  const command = commands[name];
  if (!command) {
    console.error(`hoichan: unknown command '${name}'\n\n${topHelp()}`);
    process.exitCode = 2;
    return;
  }
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      console.log(command.usage);
      return;
    }
    await command.run(values as Record<string, string | boolean | undefined>, positionals);
  } catch (err) {
    // Only on the error path, so loading them costs a command nothing.
    const [{ ConfigError }, { WorkerBinaryError }, { AuthError, KeyConfigError }] = await Promise.all([import('../config/load.js'), import('../media/workerBinary.js'), import('../auth/index.js')]);
    if (err instanceof ConfigError || err instanceof WorkerBinaryError || err instanceof UsageError || err instanceof AuthError || err instanceof KeyConfigError) {
      console.error(`hoichan ${name}: ${err.message}`);
    } else if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`hoichan ${name}: ${(err as Error).message}\n\n${command.usage}`);
    } else {
      console.error(`hoichan ${name}: ${(err as Error).stack ?? err}`);
    }
    process.exitCode = name === 'token' || err instanceof UsageError ? 2 : 1;
    process.exit();
  }
}
