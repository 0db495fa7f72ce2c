// One load generator process against Janus VideoRoom: `hoichan loadtest`'s
// run (src/loadtest/run.ts: join schedule, measurement, report) with the
// Janus clients of janusClients.ts. Prints progress on stderr and the
// LoadtestReport as JSON on stdout, like `hoichan loadtest --json`.
//   node dist/scripts/bench/webrtc/janusLoad.js --janus http://127.0.0.1:PORT/janus --room R
//     [--publishers 1] [--subscribers 10] [--duration 15] [--join-rate 20] [--video vp8|h264]
// (the room's videocodec must be the one --video names: the bench creates it so)
// SIGINT/SIGTERM stop early and still print the report.

import '../support/quiet.js';
import { parseArgs } from 'node:util';
import type { VideoCodec } from '../../../src/loadtest/media.js';
import { runLoadtest } from '../../../src/loadtest/run.js';
import { BENCH_SECRET } from '../support/hubProcess.js';
import { closingSessions, janusClients } from './janusClients.js';

const { values } = parseArgs({
  options: {
    janus: { type: 'string' },
    room: { type: 'string' },
    publishers: { type: 'string', default: '1' },
    subscribers: { type: 'string', default: '10' },
    duration: { type: 'string', default: '15' },
    'join-rate': { type: 'string', default: '20' },
    video: { type: 'string', default: 'vp8' },
  },
});
if (!values.janus || !values.room || (values.video !== 'vp8' && values.video !== 'h264')) {
  console.error('usage: janusLoad --janus URL --room R [--publishers P] [--subscribers N] [--duration S] [--join-rate R] [--video vp8|h264]');
  process.exit(2);
}
const video: VideoCodec = values.video;

const abort = new AbortController();
const stop = () => abort.abort();
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

const report = await runLoadtest(
  {
    hubUrl: values.janus,
    conferenceId: values.room,
    // The run mints a Hoichan token per client; Janus clients never send it.
    tokenSecret: BENCH_SECRET,
    publishers: Number(values.publishers),
    subscribers: Number(values.subscribers),
    durationSeconds: Number(values.duration),
    video,
    audioOnly: false,
    joinRate: Number(values['join-rate']),
  },
  { clients: janusClients, onProgress: (line) => console.error(line), signal: abort.signal },
);
console.log(JSON.stringify(report));
await Promise.race([Promise.allSettled([...closingSessions]), new Promise((resolve) => setTimeout(resolve, 5000))]);
// libdatachannel's threads would keep the process up a little longer: nothing left to measure.
process.exit(report.failures.total > 0 ? 1 : 0);
