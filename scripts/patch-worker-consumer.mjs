#!/usr/bin/env node
// Rewrites a copy of mediasoup 3.19's worker/src/RTC/SimpleConsumer.cpp so that
// a consumer that is not active (paused, its producer paused, its transport not
// connected) stops recording every packet it skips in its RTP sequence manager.
//
// Why: SimpleConsumer::SendRtpPacket calls rtpSeqManager->Drop(seq) for every
// packet of its producer while the consumer is inactive, and SeqManager keeps
// each dropped seq in a std::set<uint16_t> (one 48-byte heap node) until the
// seq is half the sequence space (32,768 packets) behind the newest. A video
// consumer paused by last-N therefore grows by ~8 KiB/s (170 packets/s) and
// levels off at ~1.5 MiB after ~3 minutes; 320 paused consumers (20 viewers,
// last-N 4 of 20 cameras) took two workers from 33 to 216 MiB
// (docs/PERFORMANCE.md section 8). The set is useless: every way back to
// active (resume, producer resumed, transport connected) sets syncRequired, and
// the first packet sent after it calls rtpSeqManager->Sync(), which clears the
// set and continues the output sequence from the last packet sent. Here the
// inactive branch sets syncRequired itself instead of calling Drop(), so the
// output is the same in those paths, and also contiguous when a consumer comes
// back by a way that sets nothing (its producer's stream score rising again);
// video then waits for a keyframe instead of forwarding frames whose
// references it skipped.
// Simulcast consumers are not affected (pausing unsets their current layer,
// and they drop only packets of the current layer); SvcConsumer has the same
// pattern but its own IsActive() also counts layers, so it is left as it is.
// Each edit asserts it matched; see docs/MEDIASOUP-WORKER.md.
//
// usage: patch-worker-consumer.mjs <copied worker dir>
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const workerDir = process.argv[2];
if (!workerDir) {
  console.error('usage: patch-worker-consumer.mjs <copied worker dir>');
  process.exit(2);
}
const file = join(workerDir, 'src', 'RTC', 'SimpleConsumer.cpp');
let text = readFileSync(file, 'utf8');

function edit(description, from, to, count) {
  const matches = text.match(from);
  const found = matches ? matches.length : 0;
  if (found !== count) throw new Error(`${file}: could not ${description} (${found} matches, expected ${count}); is this mediasoup 3.19?`);
  text = text.replace(from, to);
}

edit(
  'stop recording the packets an inactive consumer skips',
  /(\n\t\tif \(!IsActive\(\)\)\n\t\t\{\n#ifdef MS_RTC_LOGGER_RTP\n\t\t\tpacket->logger\.Discarded\(RtcLogger::RtpPacket::DiscardReason::CONSUMER_INACTIVE\);\n#endif\n\n)\t\t\tthis->rtpSeqManager->Drop\(packet->GetSequenceNumber\(\)\);\n/g,
  '$1\t\t\t// Hoichan: no Drop() (a heap node per skipped packet, kept for 32,768 packets);\n' +
    '\t\t\t// the first packet sent when active again re-syncs the sequence instead.\n' +
    '\t\t\tthis->syncRequired = true;\n',
  1,
);

writeFileSync(file, text);
console.log('patched SimpleConsumer.cpp: an inactive consumer re-syncs instead of recording skipped packets');
