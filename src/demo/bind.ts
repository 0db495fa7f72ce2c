// Where the demo hub listens. Its JWT secret is public (anyone who reaches the
// hub can mint tokens), and a demo is opened in a browser on the same machine:
// HTTP and media stay on loopback unless the operator chose addresses for each.

export interface DemoBinding {
  /** Config overrides for the demo hub (merged last). */
  overrides: { http?: { listenIp: string }; media?: { listenIp: string } };
  /** Which of HTTP and media were put on loopback, for the printed hint. */
  loopback: { http: boolean; media: boolean };
}

export function demoBinding(env: NodeJS.ProcessEnv, configFile: string | undefined): DemoBinding {
  const fromFile = Boolean(configFile || env.HOICHAN_CONFIG);
  const http = !fromFile && !env.HOICHAN_HTTP_LISTEN_IP;
  const media = !fromFile && !env.HOICHAN_LISTEN_IP && !env.HOICHAN_ANNOUNCED_IP;
  return {
    overrides: { ...(http ? { http: { listenIp: '127.0.0.1' } } : {}), ...(media ? { media: { listenIp: '127.0.0.1' } } : {}) },
    loopback: { http, media },
  };
}
