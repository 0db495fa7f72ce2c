import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * A virtual serial cable: a socat pseudo-terminal pair. The driver opens
 * `agentEnd`, a simulator (or a test) writes `deviceEnd`. Used by the demo
 * site and by the serial tests, which stop and restart it to play a USB unplug.
 */
export interface PtyPair {
  agentEnd: string;
  deviceEnd: string;
  /** Ends socat and waits until its links are gone (the "device" is unplugged). */
  stop(): Promise<void>;
  /** Starts socat again with the same link names (the "device" is back). */
  restart(): Promise<void>;
}

export async function startPtyPair(agentEnd: string, deviceEnd: string, socat = '/usr/bin/socat'): Promise<PtyPair> {
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    const proc = spawn(socat, [`pty,raw,echo=0,link=${agentEnd}`, `pty,raw,echo=0,link=${deviceEnd}`], { stdio: 'ignore' });
    child = proc;
    const failed = new Promise<never>((_, reject) => {
      proc.once('error', (err) => reject(new Error(`cannot run ${socat}: ${err.message}`)));
      proc.once('exit', (code) => reject(new Error(`socat exited (${code}) before creating ${agentEnd}`)));
    });
    failed.catch(() => undefined);
    await until(() => existsSync(agentEnd) && existsSync(deviceEnd), `socat did not create ${agentEnd} and ${deviceEnd}`, failed);
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    await exited;
    await until(() => !existsSync(agentEnd) && !existsSync(deviceEnd), `socat left ${agentEnd} behind`);
  };

  await start();
  return { agentEnd, deviceEnd, stop, restart: start };
}

async function until(condition: () => boolean, error: string, failed?: Promise<never>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(error);
    const tick = new Promise((resolve) => setTimeout(resolve, 20));
    await (failed ? Promise.race([tick, failed]) : tick);
  }
}
