// Kernel-side UDP receive drops per local port (Linux /proc/net/udp "drops"
// column: datagrams discarded because the socket's receive buffer was full).
// The fan-out bench reads them around each window, so a loss that happened in
// a socket buffer is attributed to that socket instead of to the SFU.

import { readFileSync } from 'node:fs';

/** drops by local port, summed over the sockets bound to it (IPv4 and IPv6). */
export function udpDropsByPort(): Map<number, number> {
  const drops = new Map<number, number>();
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 13) continue;
      const port = parseInt(fields[1]!.split(':')[1]!, 16);
      drops.set(port, (drops.get(port) ?? 0) + Number(fields.at(-1)));
    }
  }
  return drops;
}

export function sumDrops(drops: Map<number, number>, ports: Iterable<number>): number {
  let sum = 0;
  for (const port of ports) sum += drops.get(port) ?? 0;
  return sum;
}

/** System-wide UDP RcvbufErrors (/proc/net/snmp), the number `netstat -su` prints as "receive buffer errors". */
export function udpRcvbufErrors(): number {
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
    const names = lines[0]!.split(/\s+/);
    const values = lines[1]!.split(/\s+/);
    return Number(values[names.indexOf('RcvbufErrors')]);
  } catch {
    return NaN;
  }
}
