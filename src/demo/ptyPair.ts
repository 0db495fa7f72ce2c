import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

/** A socat pseudo-terminal pair: the agent's driver opens `agentEnd`, the simulator writes `deviceEnd`. */
export interface PtyPair {
  agentEnd: string;
  deviceEnd: string;
  stop(): Promise<void>;
}

export async function startPtyPair(agentEnd: string, deviceEnd: string, socat = '/usr/bin/socat'): Promise<PtyPair> {
  const child: ChildProcess = spawn(socat, [`pty,raw,echo=0,link=${agentEnd}`, `pty,raw,echo=0,link=${deviceEnd}`], { stdio: 'ignore' });
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (err) => reject(new Error(`cannot run ${socat}: ${err.message}`)));
    child.once('exit', (code) => reject(new Error(`socat exited (${code}) before creating ${agentEnd}`)));
  });
  failed.catch(() => undefined);
  const deadline = Date.now() + 5000;
  while (!(existsSync(agentEnd) && existsSync(deviceEnd))) {
    if (Date.now() > deadline) throw new Error(`socat did not create ${agentEnd} and ${deviceEnd}`);
    await Promise.race([new Promise((resolve) => setTimeout(resolve, 20)), failed]);
  }
  return {
    agentEnd,
    deviceEnd,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
