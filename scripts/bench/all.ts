// npm run bench: the telemetry issue's four benches in sequence, each in its own
// process with a time cap, within 15 minutes on a 2-core machine. Prints each
// bench's tables; results land in bench-results/*.json.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BENCHES: [file: string, capSeconds: number][] = [
  ['sfu-fanout.js', 600],
  ['join-latency.js', 180],
  ['devices-flow.js', 240],
  ['memory.js', 90],
];

const started = performance.now();
const failed: string[] = [];
for (const [file, cap] of BENCHES) {
  console.log(`\n===== ${file} (cap ${cap} s) =====`);
  const t0 = performance.now();
  const run = spawnSync(process.execPath, [fileURLToPath(new URL(`./${file}`, import.meta.url))], { stdio: 'inherit', timeout: cap * 1000, killSignal: 'SIGKILL' });
  if (run.status !== 0) failed.push(`${file} (${run.error?.message ?? `exit ${run.status ?? run.signal}`})`);
  console.log(`===== ${file}: ${((performance.now() - t0) / 1000).toFixed(0)} s =====`);
}
console.log(`\nall benches: ${((performance.now() - started) / 60000).toFixed(1)} min${failed.length ? `; failed: ${failed.join(', ')}` : ''}`);
process.exit(failed.length ? 1 : 0);
