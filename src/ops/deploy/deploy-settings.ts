import type { Config, SettingName } from '../../config/resolve-config.js';
import { settingSpecs } from '../../config/resolve-config.js';
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

/** The deploy settings of `settingSpecs`, by the short name their flags use. */
export const deploySettingNames = {
  blueUrl: 'deployBlueUrl',
  greenUrl: 'deployGreenUrl',
  upstreamFile: 'deployUpstreamFile',
  testCommand: 'deployTestCommand',
  reloadCommand: 'deployReloadCommand',
  drainTimeoutMs: 'deployDrainTimeoutMs',
  proxyPidFile: 'deployProxyPidFile',
} as const satisfies Record<string, SettingName>;

export type DeploySettingName = keyof typeof deploySettingNames;

type DeployConfig = Pick<Config, (typeof deploySettingNames)[DeploySettingName]>;

/** Flags win over the `deploy*` settings (`ATHANOR_DEPLOY_*`, the config file, the defaults). */
export function resolveDeploySettings(
  config: DeployConfig,
  flags: Partial<Record<DeploySettingName, string | undefined>> = {},
): DeploySettings {
  const pick = (name: DeploySettingName): string => {
    const value = flags[name];
    return value === undefined || value === '' ? String(config[deploySettingNames[name]]) : value;
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
        `${settingSpecs[deploySettingNames[name]].env} must be an http(s) URL such as http://127.0.0.1:8081, got '${text}'`,
      );
    }
  };
  const drain = Number(pick('drainTimeoutMs'));
  if (!Number.isSafeInteger(drain) || drain < 0) {
    throw new AthanorError(
      'invalid_config',
      `--drain-timeout-ms must be a whole number of milliseconds, got '${pick('drainTimeoutMs')}'`,
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
