import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { agentToken, PROJECT_ROOT } from './hub.js';

export interface Hl7AgentSiteOptions {
  /** Where the site config and the journal go. */
  dir: string;
  hubUrl: string;
  siteId: string;
  conferenceId: string;
  /** The one HL7 monitor's device id. */
  deviceId: string;
  /** Where the agent's MLLP listener binds (127.0.0.1). */
  hl7Port: number;
}

/**
 * A real `hoichan agent` process with one HL7 monitor in server mode, for the
 * tests that kill it and start it again on the same journal. Call stop() in
 * cleanup: it kills whichever process is running.
 */
export class Hl7AgentSite {
  #child: ChildProcess | undefined;

  private constructor(private readonly configFile: string) {}

  static async create(options: Hl7AgentSiteOptions): Promise<Hl7AgentSite> {
    const configFile = join(options.dir, 'site.json');
    await writeFile(
      configFile,
      JSON.stringify({
        siteId: options.siteId,
        conferenceId: options.conferenceId,
        hub: { url: options.hubUrl, token: agentToken(options.siteId, options.conferenceId), reconnectMinMs: 100, reconnectMaxMs: 1000 },
        journal: { dir: join(options.dir, 'journal') },
        devices: [{ id: options.deviceId, type: 'vitals', model: 'Mindray (simulated)', protocol: 'hl7-mllp', settings: { mode: 'server', host: '127.0.0.1', port: options.hl7Port } }],
      }),
    );
    return new Hl7AgentSite(configFile);
  }

  /** The running (or last) agent process. */
  get child(): ChildProcess | undefined {
    return this.#child;
  }

  /** Starts the agent, silent, with these extra environment variables (fault hooks). */
  start(env: Record<string, string> = {}): ChildProcess {
    this.#child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'hoichan.js'), 'agent', '--config', this.configFile], {
      stdio: 'ignore',
      env: { ...process.env, HOICHAN_LOG_LEVEL: 'silent', ...env },
    });
    return this.#child;
  }

  stop(): void {
    this.#child?.kill('SIGKILL');
  }
}
