import { AthanorError } from '../../domain/errors.js';

export const colours = ['blue', 'green'] as const;
export type Colour = (typeof colours)[number];

/** Where the two colours listen and how the front proxy is told which one is live. */
export interface DeploySettings {
  /** Base URL of each colour's `athanor serve`; default blue 127.0.0.1:8081, green 127.0.0.1:8082. */
  readonly urls: Readonly<Record<Colour, string>>;
  /** The nginx upstream file `deploy switch` rewrites; default /etc/nginx/conf.d/athanor-upstream.conf. */
  readonly upstreamFile: string;
  /** Checks the proxy's configuration before a reload; default `nginx -t`. */
  readonly testCommand: string;
  /** Makes the proxy read its configuration again without dropping connections; default `nginx -s reload`. */
  readonly reloadCommand: string;
  /** How long a switch waits for the retired colour's requests to finish; default 90000 ms. */
  readonly drainTimeoutMs: number;
  /**
   * nginx's pid file: a switch waits until the workers nginx ran before the reload have exited;
   * without it, until the retired colour received nothing for a second. Default /run/nginx.pid.
   */
  readonly proxyPidFile: string;
}

/** The deploy settings, their environment variables and defaults: one table for code and help. */
export const deploySettingSpecs = {
  blueUrl: { env: 'ATHANOR_DEPLOY_BLUE_URL', fallback: 'http://127.0.0.1:8081' },
  greenUrl: { env: 'ATHANOR_DEPLOY_GREEN_URL', fallback: 'http://127.0.0.1:8082' },
  upstreamFile: { env: 'ATHANOR_DEPLOY_UPSTREAM_FILE', fallback: '/etc/nginx/conf.d/athanor-upstream.conf' },
  testCommand: { env: 'ATHANOR_DEPLOY_TEST_COMMAND', fallback: 'nginx -t' },
  reloadCommand: { env: 'ATHANOR_DEPLOY_RELOAD_COMMAND', fallback: 'nginx -s reload' },
  drainTimeoutMs: { env: 'ATHANOR_DEPLOY_DRAIN_TIMEOUT_MS', fallback: '90000' },
  proxyPidFile: { env: 'ATHANOR_DEPLOY_PROXY_PID_FILE', fallback: '/run/nginx.pid' },
} as const;

export type DeploySettingName = keyof typeof deploySettingSpecs;

/** Flags win over `ATHANOR_DEPLOY_*` variables, which win over the defaults. */
export function resolveDeploySettings(
  flags: Partial<Record<DeploySettingName, string | undefined>>,
  env: NodeJS.ProcessEnv = process.env,
): DeploySettings {
  const pick = (name: DeploySettingName): string => {
    const spec = deploySettingSpecs[name];
    const value = flags[name] ?? env[spec.env];
    return value === undefined || value === '' ? spec.fallback : value;
  };
  const url = (name: 'blueUrl' | 'greenUrl') => {
    const text = pick(name);
    try {
      const parsed = new URL(text);
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http');
      return text.replace(/\/+$/, '');
    } catch {
      throw new AthanorError(
        'invalid_config',
        `${deploySettingSpecs[name].env} must be an http(s) URL such as http://127.0.0.1:8081, got '${text}'`,
      );
    }
  };
  const drain = Number(pick('drainTimeoutMs'));
  if (!Number.isSafeInteger(drain) || drain < 0) {
    throw new AthanorError(
      'invalid_config',
      `${deploySettingSpecs.drainTimeoutMs.env} must be a whole number of milliseconds, got '${pick('drainTimeoutMs')}'`,
    );
  }
  return Object.freeze({
    urls: Object.freeze({ blue: url('blueUrl'), green: url('greenUrl') }),
    upstreamFile: pick('upstreamFile'),
    testCommand: pick('testCommand'),
    reloadCommand: pick('reloadCommand'),
    drainTimeoutMs: drain,
    proxyPidFile: pick('proxyPidFile'),
  });
}

export function parseColour(text: string): Colour {
  if ((colours as readonly string[]).includes(text)) return text as Colour;
  throw new AthanorError('invalid_argument', `colour must be blue or green, got '${text}'`);
}

export const otherColour = (colour: Colour): Colour => (colour === 'blue' ? 'green' : 'blue');
