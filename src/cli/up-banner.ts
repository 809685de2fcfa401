import { note } from './output.js';

/** What `athanor up` tells the person who started it. */
export interface UpBanner {
  readonly version: string;
  readonly url: string;
  readonly dataDir: string;
  readonly database: string;
  readonly objects: string;
  readonly backups: string;
  readonly compute: string;
  /** The web console's URL, or why there is none. */
  readonly console: string;
}

/** The short banner: URLs, data dir, what runs. */
export function printUpBanner(banner: UpBanner): void {
  const rows: [string, string][] = [
    ['APIs', `${banner.url}/v1 (user), ${banner.url}/compute/v1 (compute); docs ${banner.url}/docs`],
    ['console', banner.console],
    ['data', banner.dataDir],
    ['database', banner.database],
    ['results', banner.objects],
    ['backups', banner.backups],
    ['compute', banner.compute],
  ];
  note('');
  note(`athanor ${banner.version} is up on ${banner.url}`);
  for (const [label, value] of rows) note(`  ${label.padEnd(9)} ${value}`);
  note('');
}

/**
 * The first-run admin key, once, framed so it stands out from the log lines, with the lines to
 * paste. The key also sits in `keyFile` (mode 0600).
 */
export function printFirstRunKey(options: { url: string; key: string; keyFile: string }): void {
  const lines = [
    "First run: created the user identity 'admin' with every scope (*-*-*)",
    "and the admin role (the console's operator pages).",
    'Its key is shown only this once:',
    '',
    `  ${options.key}`,
    '',
    `It is also in ${options.keyFile} (readable only by you; deleted`,
    "when you run 'athanor identity set-key -t user -i admin').",
  ];
  const width = Math.max(...lines.map((l) => l.length));
  const rule = `+${'-'.repeat(width + 2)}+`;
  note('');
  note(rule);
  for (const line of lines) note(`| ${line.padEnd(width)} |`);
  note(rule);
  note('To use the CLI from another shell:');
  note(`  export ATHANOR_URL=${options.url} ATHANOR_ID=admin ATHANOR_KEY_FILE=${options.keyFile}`);
  note('');
}
