// Last-N bench: the hub's video egress per viewer in a conference of P
// synthetic publishers (libdatachannel peers of `hoichan loadtest`, 720p
// 1.5 Mb/s VP8 + opus each), with every video forwarded vs last-N K
// (setVideoPreferences: nothing pinned, K thumbnails; docs/SCALING.md).
// "Every video" is last-N with as many thumbnails as publishers (at most 25,
// the request's bound): a viewer that says nothing gets the default last-N 4.
// Egress is counted at the viewers (loopback: what the hub sent them).
//   node dist/scripts/bench/last-n.js [--publishers 30] [--subscribers 2] [--last-n 4] [--duration 10]
// Writes bench-results/last-n.json. Loopback only.

import './support/quiet.js';
import { parseArgs } from 'node:util';
import { printTable, writeResults } from './support/common.js';

const { values } = parseArgs({
  options: {
    publishers: { type: 'string', default: '25' },
    subscribers: { type: 'string', default: '2' },
    'last-n': { type: 'string', default: '4' },
    duration: { type: 'string', default: '10' },
  },
});
const publishers = Number(values.publishers);
const subscribers = Number(values.subscribers);
const lastN = Number(values['last-n']);
const duration = Number(values.duration);
const SECRET = 'bench-secret-0123456789abcdef-0123456789abcdefghi';

const { loadConfig } = await import('../../src/config/load.js');
const { Hub } = await import('../../src/hub/Hub.js');
const { runLoadtest } = await import('../../src/loadtest/run.js');
const hub = await Hub.start(
  loadConfig({
    env: {},
    overrides: {
      http: { listenIp: '127.0.0.1', port: 0 },
      media: { numWorkers: 1, listenIp: '127.0.0.1', webRtcServerPort: 31960, rtcMinPort: 20000, rtcMaxPort: 29999, workerLogLevel: 'error', maxPeersPerConference: publishers + subscribers + 2 },
      auth: { jwtSecret: SECRET, demo: false },
    },
  }),
);
const rows: Record<string, unknown>[] = [];
try {
  for (const mode of ['every video', `last-N ${lastN}`]) {
    console.log(`\n${mode}: ${publishers} publishers, ${subscribers} viewers, ${duration} s`);
    const report = await runLoadtest(
      {
        hubUrl: hub.url,
        conferenceId: `bench-lastn-${mode === 'every video' ? 'all' : lastN}`,
        tokenSecret: SECRET,
        publishers,
        subscribers,
        durationSeconds: duration,
        video: 'vp8',
        audioOnly: false,
        joinRate: 20,
        lastN: mode === 'every video' ? Math.min(25, publishers) : lastN,
      },
      { onProgress: (line) => console.log(`  ${line}`) },
    );
    if (report.failures.total > 0) console.log('  failures:', report.failures.examples);
    const video = report.tracks.find((t) => t.kind === 'video')!;
    const audio = report.tracks.find((t) => t.kind === 'audio')!;
    rows.push({
      mode,
      publishers,
      viewers: subscribers,
      'video streams per viewer': (video.tracks - video.silentTracks) / subscribers,
      'video Mb/s per viewer': video.bitrateMbpsTotal / subscribers,
      'audio Mb/s per viewer': audio.bitrateMbpsTotal / subscribers,
      'video loss %': video.lossPercent,
      failures: report.failures.total,
      'generator cpu %': report.generatorCpuPercent,
    });
  }
} finally {
  await hub.close();
}
const all = rows[0]?.['video Mb/s per viewer'] as number | undefined;
const some = rows[1]?.['video Mb/s per viewer'] as number | undefined;
printTable(`Last-N: hub video egress per viewer, ${publishers} publishers`, rows);
if (all && some) console.log(`last-N ${lastN} / every video: egress per viewer ${(some / all).toFixed(3)}`);
writeResults('last-n', { publishers, subscribers, lastN, duration, rows });
const nodeDataChannel = await import('node-datachannel');
nodeDataChannel.cleanup();
process.exit(0);
