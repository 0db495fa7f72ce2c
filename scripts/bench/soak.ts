// Soak: one conference of S sites for --minutes (30 by default) against a hub
// in its own process with W workers. Each site is a demo site (src/demo/):
// simulated Mindray HL7, Cyton ECG, CMS50 and OPC UA devices through the real
// drivers, journal and uplink, as `hoichan demo` runs one. The sites' cameras
// and viewers are `hoichan loadtest` WebRTC clients in one generator process:
// --publishers (VP8 ~1.5 Mb/s + opus) and --subscribers that each receive the
// video of --last-n of them (docs/SCALING.md) and every microphone. Every peer
// also receives every site's device readings, as the web client does: that
// fan-out (peers x readings) is the hub's heaviest work here.
// --router-cap (media.maxConsumersPerRouter) below the consumers spreads the
// conference over the workers with pipes between them, as a big one would.
// Every --sample-seconds (60): the hub's RSS and heap (garbage collected first,
// from its /metrics), each worker's RSS (hoichan_worker_rss_bytes, by pool
// slot: the worker pid of getResourceUsage), the generator's and this
// process's (the sites') RSS, the device and media rates, and every error.
// At the end: the samples, the errors, and a verdict: RSS growth from the
// --warmup-minutes sample (5) to the last under the stated bounds.
//   node dist/scripts/bench/soak.js [--minutes 30] [--sites 20] [--publishers 20] [--subscribers 20] [--last-n 4] [--workers 2] [--router-cap 400]
// Writes bench-results/soak.json. Loopback only; bounded in clients and time.

import './support/quiet.js';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Authenticator } from '../../src/auth/index.js';
import { DemoSite } from '../../src/demo/demoSite.js';
import { printTable, rssOf, sleep, writeResults } from './support/common.js';
import { HubMetrics, signalingErrors, signalingErrorsByCode, sumOf, type Sample } from './support/hubMetrics.js';
import { BENCH_SECRET, HubProcess } from './support/hubProcess.js';
import { LoadtestProcess } from './support/loadtestProcess.js';
import { WindowCpu } from './support/windowCpu.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    sites: { type: 'string', default: '20' },
    publishers: { type: 'string' },
    subscribers: { type: 'string' },
    'last-n': { type: 'string', default: '4' },
    workers: { type: 'string', default: '2' },
    'router-cap': { type: 'string', default: '400' },
    'sample-seconds': { type: 'string', default: '60' },
    'warmup-minutes': { type: 'string', default: '5' },
  },
});
const minutes = Number(values.minutes);
const sites = Number(values.sites);
const publishers = Number(values.publishers ?? values.sites);
const subscribers = Number(values.subscribers ?? values.sites);
const lastN = Number(values['last-n']);
const workers = Number(values.workers);
const routerCap = Number(values['router-cap']);
const sampleSeconds = Number(values['sample-seconds']);
for (const [name, v, min, max] of [
  ['minutes', minutes, 1, 55],
  ['sites', sites, 1, 50],
  ['publishers', publishers, 1, 50],
  ['subscribers', subscribers, 0, 200],
  ['last-n', lastN, 0, 25],
  ['workers', workers, 1, 8],
  ['router-cap', routerCap, 1, 10_000],
  ['sample-seconds', sampleSeconds, 5, 600],
] as const) {
  if (!(Number.isFinite(v) && v >= min && v <= max)) throw new Error(`--${name} must be a number in [${min}, ${max}]`);
}
// A short trial run still gets a baseline after its own start-up.
const warmupMinutes = Math.min(Number(values['warmup-minutes']), Math.floor(minutes / 2));
const MiB = 2 ** 20;
const CONFERENCE = 'soak';

/**
 * The bounds, stated before the run: RSS growth from the warm-up sample to the
 * last, fitted over every sample in between. Why these numbers (docs/PERFORMANCE.md section 8): by the warm-up
 * sample every buffer with a bound is full (device history is capped small
 * below for that reason; mediasoup's retransmission buffers fill in seconds),
 * so what still grows is a leak or allocator noise. Node's RSS moves by a few
 * MiB between samples on its own (heap sizing, malloc arenas); 20 MiB over 25
 * minutes is ~14 bytes per device reading at the rate this soak carries, so
 * a leak of one small object per reading or per signaling request fails it.
 * A worker is C++ with no garbage collector; 8 MiB over 25 minutes is ~0.2
 * bytes per forwarded packet at this soak's rate.
 */
const BOUNDS = { hubMiB: 20, workerMiB: 8 } as const;

/**
 * The hub's device history per site and per device, made small so that it is
 * full before the warm-up sample: with the defaults (64 MiB a site) twenty
 * sites would fill it for hours, growth by design that would hide a leak.
 */
const HISTORY = { historyBytesPerSite: 1 * MiB, historyBytesPerDevice: 256 * 1024 };

/** RSS of a process that may have exited (a replaced worker): NaN then. */
function rssOrNaN(pid: number): number {
  try {
    return rssOf(pid);
  } catch {
    return NaN;
  }
}

const loadavg1 = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
const round = (v: number, digits = 1) => (Number.isFinite(v) ? Number(v.toFixed(digits)) : v);

/** Errors the sites see, counted as they happen (cumulative). */
const siteErrors = { uplinkDrops: 0, deviceDrops: 0, simulatorErrors: 0 };

const hub = await HubProcess.start({ numWorkers: workers, maxConsumersPerRouter: routerCap }, { devices: HISTORY });
const metrics = new HubMetrics(hub.info.url);
const auth = Authenticator.forSecret(BENCH_SECRET);
const demoSites: DemoSite[] = [];
let generator: LoadtestProcess | undefined;
const rows: Record<string, number>[] = [];
const scrapes: { t: number; samples: Sample[] }[] = [];
const started = performance.now();
/** Devices of the soak the hub lists as online at the latest sample (/api/ops); 4 a site expected. */
let devicesOnline = 0;

try {
  // ---- the sites, one after another (node-opcua start-up is CPU-heavy) ----------
  for (let i = 0; i < sites; i++) {
    const siteId = `soak-site-${String(i + 1).padStart(2, '0')}`;
    const token = auth.sign({ kind: 'agent', siteId, name: siteId, conferences: [CONFERENCE], ttlSeconds: 24 * 3600 });
    const site = await DemoSite.start({ hubUrl: hub.info.url, token, siteId, conferenceId: CONFERENCE, seed: 1000 + i, deviceIdPrefix: `${siteId}-` }, (_kind, sim) =>
      sim.on('error', () => siteErrors.simulatorErrors++),
    );
    site.agent.uplink.on('disconnected', () => siteErrors.uplinkDrops++);
    const wasOnline = new Set<string>();
    site.agent.registry.on('status', (info) => {
      if (info.status === 'online') wasOnline.add(info.deviceId);
      else if (wasOnline.has(info.deviceId)) siteErrors.deviceDrops++;
    });
    demoSites.push(site);
  }
  console.log(`${sites} sites started in ${((performance.now() - started) / 1000).toFixed(0)} s`);

  // ---- the sites' cameras and viewers ---------------------------------------
  const joinSeconds = (publishers + subscribers) / 5;
  generator = new LoadtestProcess(
    hub.info.url,
    // The generator's media time outlasts the soak; the bench stops it after the last sample.
    ['--conference', CONFERENCE, '--publishers', String(publishers), '--subscribers', String(subscribers), '--last-n', String(lastN), '--join-rate', '5/s', '--duration', `${minutes * 60 + 120}s`],
    minutes * 60 + joinSeconds + 300,
  );
  generator.report.catch(() => undefined); // awaited at the end
  while (generator.progress?.phase !== 'media') {
    if (performance.now() - started > (joinSeconds + 600) * 1000) throw new Error('the generator did not finish joining');
    await sleep(500);
  }
  console.log(`generator joined: ${JSON.stringify(generator.progress)}`);

  // ---- samples --------------------------------------------------------------
  const t0 = performance.now();
  const gen = generator;
  const cpu = { hub: new WindowCpu([hub.info.pid]), workers: new WindowCpu(hub.info.workerPids), generator: new WindowCpu([gen.pid]), sites: new WindowCpu([process.pid]) };
  const sample = async () => {
    await hub.gc();
    const samples = await metrics.scrape();
    const ops = await metrics.ops().catch((err: Error) => (console.log(`  /api/ops failed: ${err.message}`), undefined));
    devicesOnline = ops ? ops.devices.filter((d) => d.conferenceId === CONFERENCE && d.status === 'online').length : NaN;
    const t = (performance.now() - t0) / 1000;
    const prev = scrapes.at(-1);
    scrapes.push({ t, samples });
    const rate = (name: string, match: Record<string, string> = {}) => (prev ? (sumOf(samples, name, match) - sumOf(prev.samples, name, match)) / (t - prev.t) : NaN);
    const row: Record<string, number> = {
      min: round(t / 60, 1),
      'hub RSS MiB': round(sumOf(samples, 'process_resident_memory_bytes') / MiB),
      'hub heap MiB': round(sumOf(samples, 'nodejs_heap_size_used_bytes') / MiB),
    };
    for (let slot = 0; slot < workers; slot++) {
      // By pool slot, so a replaced worker stays in its column; /proc of the first pid when the hub's getResourceUsage timed out.
      const bytes = sumOf(samples, 'hoichan_worker_rss_bytes', { worker: String(slot) }) || rssOrNaN(hub.info.workerPids[slot]!);
      row[`w${slot} RSS MiB`] = round(bytes / MiB);
    }
    row['generator RSS MiB'] = round(rssOrNaN(gen.pid) / MiB);
    row['sites RSS MiB'] = round(process.memoryUsage.rss() / MiB);
    row['hub devices online'] = devicesOnline;
    row['readings/s'] = Math.round(rate('hoichan_device_readings_received_total'));
    row['media out Mb/s'] = round((rate('hoichan_media_bytes_total', { direction: 'out' }) * 8) / 1e6);
    // Media objects (a count that grows is a leak of its own) and the receivers' NACKs the hub answers.
    row.consumers = sumOf(samples, 'hoichan_worker_objects', { type: 'consumer' });
    row['NACKs in /s'] = Math.round(rate('hoichan_media_nacks_total', { direction: 'out' }));
    row['journal pending'] = demoSites.reduce((n, s) => n + s.agent.journal.depth().pending, 0);
    // CPU over the minute since the previous sample (none before the first).
    for (const [name, meter] of Object.entries(cpu)) {
      const percent = meter.next();
      row[`${name} CPU %`] = prev ? Math.round(percent) : NaN;
    }
    row['gen loss % (run)'] = round(gen.progress?.lossPercent ?? NaN, 2);
    row.errors = errorTotals(samples).total;
    row['load 1m'] = loadavg1();
    rows.push(row);
    console.log(`  ${Object.entries(row).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  };
  await sample();
  const end = t0 + minutes * 60_000;
  for (let k = 1; performance.now() < end - 1000; k++) {
    const next = t0 + k * sampleSeconds * 1000;
    while (performance.now() < Math.min(next, end)) await sleep(Math.min(1000, Math.min(next, end) - performance.now()));
    // A sample the loaded hub could not answer in time is reported, not the end of a 30-minute run.
    await sample().catch((err: Error) => console.log(`  sample failed: ${err.message}`));
  }
} finally {
  generator?.stop();
  const report = await generator?.report.catch((err: Error) => err);
  for (const site of demoSites) await site.stop();
  const last = scrapes.at(-1)?.samples;
  const first = scrapes[0]?.samples;
  await hub.close();
  if (rows.length) summarize(report instanceof Error ? undefined : report, first, last);
  if (report instanceof Error) console.log(`generator: ${report.message}`);
}
process.exit(0);

/** Every error of the run so far, by source; the hub's counters are cumulative from its start. */
function errorTotals(samples: Sample[]) {
  const parseErrors = demoSites.reduce((n, s) => n + s.agent.registry.counters().reduce((m, c) => m + c.counters.framesRejected, 0), 0);
  const parts = {
    'hub signaling errors': signalingErrors(samples),
    'worker restarts': sumOf(samples, 'hoichan_worker_restarts_total'),
    'uplink refused': sumOf(samples, 'hoichan_uplink_refused_total'),
    'audit write errors': sumOf(samples, 'hoichan_audit_write_errors_total'),
    'client failures': generator?.progress?.failures ?? 0,
    'uplink drops': siteErrors.uplinkDrops,
    'device drops': siteErrors.deviceDrops,
    'simulator errors': siteErrors.simulatorErrors,
    'device parse errors': parseErrors,
    // Not a count of events: devices missing on the hub at the latest sample (refused, offline or stale).
    'devices not online on the hub': Number.isNaN(devicesOnline) ? 0 : Math.max(0, 4 * sites - devicesOnline),
  };
  return { ...parts, total: Object.values(parts).reduce((a, b) => a + b, 0) };
}

/** Least-squares slope of y over x (MiB per hour when x is minutes). */
function slopePerHour(points: [number, number][]): number {
  if (points.length < 2) return NaN;
  const n = points.length;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  const sxx = points.reduce((s, p) => s + (p[0] - mx) ** 2, 0);
  return sxx ? (60 * points.reduce((s, p) => s + (p[0] - mx) * (p[1] - my), 0)) / sxx : NaN;
}

function summarize(report: Awaited<LoadtestProcess['report']> | undefined, first: Sample[] | undefined, last: Sample[] | undefined): void {
  printTable(`Soak: ${sites} sites (4 simulated devices each) + ${publishers} WebRTC publishers and ${subscribers} subscribers (last-N ${lastN}) in one conference, ${workers} worker(s); hub garbage collected before each sample`, rows);
  const baseIndex = rows.findIndex((r) => r.min! >= warmupMinutes - 0.05);
  const base = rows[baseIndex === -1 ? 0 : baseIndex]!;
  const end = rows.at(-1)!;
  const after = rows.slice(baseIndex === -1 ? 0 : baseIndex);
  const verdicts: Record<string, unknown>[] = [];
  // The verdict is on the fitted growth (least-squares slope over every sample from the warm-up on,
  // times that span): one sample of a busy Node process swings by tens of MiB with its heap's size,
  // which would decide an end-minus-start difference by chance.
  const span = end.min! - base.min!;
  const check = (what: string, key: string, bound: number | undefined) => {
    const slope = slopePerHour(after.map((r) => [r.min!, r[key]!]));
    const fitted = (slope * span) / 60;
    verdicts.push({
      process: what,
      [`at ${base.min} min MiB`]: base[key],
      [`at ${end.min} min MiB`]: end[key],
      'last - first MiB': round(end[key]! - base[key]!),
      'min..max MiB': `${Math.min(...after.map((r) => r[key]!))}..${Math.max(...after.map((r) => r[key]!))}`,
      'fitted growth MiB': round(fitted),
      bound: bound === undefined ? 'none (informative)' : `< ${bound} MiB`,
      verdict: bound === undefined ? '' : fitted < bound ? 'PASS' : 'FAIL',
    });
  };
  check('hub (Node)', 'hub RSS MiB', BOUNDS.hubMiB);
  check('hub heap after GC', 'hub heap MiB', undefined);
  for (let slot = 0; slot < workers; slot++) check(`worker ${slot}`, `w${slot} RSS MiB`, BOUNDS.workerMiB);
  check('generator (hoichan loadtest)', 'generator RSS MiB', undefined);
  check(`sites (this process: ${sites} agents + simulators)`, 'sites RSS MiB', undefined);
  printTable(`RSS growth from the ${warmupMinutes}-minute sample to the last (verdict on the fitted growth)`, verdicts);

  const errors = last ? errorTotals(last) : undefined;
  if (errors) printTable('Errors over the whole run (expected all 0)', [errors]);
  const byCode = last ? signalingErrorsByCode(last) : {};
  if (Object.keys(byCode).length) console.log(`hub signaling errors by request and code: ${JSON.stringify(byCode)}`);
  // What the bounds can see: the work done between the warm-up sample and the end.
  const baseScrape = scrapes[baseIndex === -1 ? 0 : baseIndex]?.samples ?? first;
  let resolution: Record<string, number> = {};
  if (baseScrape && last) {
    const readings = sumOf(last, 'hoichan_device_readings_received_total') - sumOf(baseScrape, 'hoichan_device_readings_received_total');
    const packets = sumOf(last, 'hoichan_media_packets_total') - sumOf(baseScrape, 'hoichan_media_packets_total');
    resolution = {
      'readings after warm-up': readings,
      'RTP packets after warm-up (in + out)': packets,
      'hub bound / reading (bytes)': round((BOUNDS.hubMiB * MiB) / readings, 1),
      'worker bound / packet (bytes)': round((BOUNDS.workerMiB * MiB * workers) / packets, 2),
    };
    printTable('What the bounds can detect (a leak per item of at least this size fails the run)', [resolution]);
  }
  const withheld = last ? sumOf(last, 'hoichan_device_readings_discarded_total', { reason: 'slow_reader' }) : 0;
  const video = report?.tracks.find((t) => t.kind === 'video');
  const audio = report?.tracks.find((t) => t.kind === 'audio');
  if (report) {
    console.log(
      `generator: ${report.failures.total} client failures, video loss ${video?.lossPercent.toFixed(3)} % (${video?.silentTracks} silent of ${video?.tracks}: paused by last-N), audio loss ${audio?.lossPercent.toFixed(3)} %, CPU ${report.generatorCpuPercent.toFixed(0)} % of a core`,
    );
    for (const e of report.failures.examples) console.log(`  client failure: ${e}`);
  }
  console.log(`device readings withheld from slow readers (not an error of the hub; a sign of a starved generator): ${withheld}`);
  const loads = rows.map((r) => r['load 1m']!);
  writeResults('soak', {
    minutes,
    sites,
    publishers,
    subscribers,
    lastN,
    workers,
    routerCap,
    sampleSeconds,
    warmupMinutes,
    bounds: BOUNDS,
    history: HISTORY,
    loadAverage1m: { min: Math.min(...loads), max: Math.max(...loads) },
    rows,
    verdicts,
    errors,
    signalingErrorsByCode: byCode,
    resolution,
    withheldSlowReader: withheld,
    report,
  });
}
