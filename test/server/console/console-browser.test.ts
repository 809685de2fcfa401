import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ComputeService } from '../../../src/compute/compute-service.js';
import { loadProtocols } from '../../../src/compute/protocols.js';
import { grantRole } from '../../../src/service/identity-roles.js';
import { tempDir } from '../../helpers/backends.js';
import type { TestServer } from '../../helpers/server.js';
import { startTestServer } from '../../helpers/server.js';
import { freshStore } from '../../helpers/store.js';

/**
 * The console in a real browser: Debian's Chromium driven by playwright-core. Where Chromium is
 * missing the suite is skipped with a warning, except under CI=true, where that is a failure.
 */
const chromiumPath = process.env.ATHANOR_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(chromiumPath);
const artifacts = path.resolve('test-artifacts', 'console');
const hostile = '<img src=x onerror=alert(1)>';
const widths = [
  { name: 'phone', width: 390, height: 844 },
  { name: 'desktop', width: 1280, height: 900 },
] as const;

if (!haveChromium) {
  console.warn(
    `\n*** console browser tests SKIPPED: no Chromium at ${chromiumPath} (apt-get install chromium) ***\n`,
  );
}

describe('console in a browser: Chromium present', () => {
  it('has Chromium when CI=true', () => {
    if (process.env.CI === 'true')
      expect(haveChromium, `Chromium is required under CI: ${chromiumPath}`).toBe(true);
  });
});

describe.runIf(haveChromium)('console in a browser', () => {
  const dir = tempDir();
  let browser: Browser;
  let server: TestServer;
  let compute: ComputeService | undefined;
  const offSite: string[] = [];
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      // Playwright gives every launch an empty --user-data-dir of its own (it refuses the flag).
    });
    // The server's config names the real database file, so "back up now" can snapshot it.
    const fresh = await freshStore('sqlite', dir);
    server = await startTestServer('sqlite', dir, {
      store: fresh.store,
      databaseUrl: fresh.url,
      sweepIntervalMs: 500,
    });
    mkdirSync(artifacts, { recursive: true });
  });

  afterAll(async () => {
    await compute?.stop();
    await browser?.close();
  });

  /** A fresh browser profile whose every request and console error is recorded. */
  async function context(): Promise<BrowserContext> {
    const ctx = await browser.newContext();
    ctx.on('request', (request) => {
      if (!request.url().startsWith(server.url) && !request.url().startsWith('data:'))
        offSite.push(request.url());
    });
    ctx.on('page', (page) => watch(page));
    return ctx;
  }

  function watch(page: Page): void {
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(`${page.url()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => consoleErrors.push(`${page.url()}: ${error.message}`));
    page.on('dialog', (dialog) => {
      consoleErrors.push(`${page.url()}: unexpected dialog '${dialog.message()}'`);
      void dialog.dismiss();
    });
  }

  async function signIn(page: Page, identifier: string, key: string): Promise<void> {
    await page.goto(`${server.url}/console/`);
    await expect.poll(() => new URL(page.url()).pathname).toBe('/console/signin');
    await page.getByLabel('Identity').fill(identifier);
    await page.getByLabel('Key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${server.url}/console/`);
  }

  async function shoot(page: Page, name: string): Promise<void> {
    for (const size of widths) {
      await page.setViewportSize({ width: size.width, height: size.height });
      await page.screenshot({ path: path.join(artifacts, `${name}-${size.name}.png`), fullPage: true });
    }
  }

  it('lets an operator and a scientist add, submit, follow, restart and lose access, in the browser only', async () => {
    const adminKey = await server.addIdentity('user', 'operator', ['*-*-*']);
    await grantRole(server.store, 'test', { kind: 'user', identifier: 'operator' }, 'admin');
    const computeKey = await server.addIdentity('compute', 'browser-compute', ['*-*-*']);

    const operatorContext = await context();
    const operator = await operatorContext.newPage();
    await signIn(operator, 'operator', adminKey);
    await expect
      .poll(() => operator.locator('nav').getByRole('link', { name: 'Identities' }).count())
      .toBe(1);

    // The operator adds a scientist with a scope; the key is shown once.
    await operator.getByRole('link', { name: 'Identities' }).click();
    await operator.getByLabel('Identifier').fill('scientist');
    await operator.getByLabel('Scopes (space separated)').fill('lab-demo-one');
    await operator.getByRole('button', { name: /^Add/ }).click();
    const scientistKey = (await operator.locator('#new-key').textContent())?.trim() ?? '';
    expect(scientistKey.length).toBeGreaterThan(20);

    // The scientist signs in, sees no operator pages, and submits a network with a hostile name.
    const scientistContext = await context();
    const scientist = await scientistContext.newPage();
    await signIn(scientist, 'scientist', scientistKey);
    expect(await scientist.locator('nav').getByRole('link', { name: 'Identities' }).count()).toBe(0);
    await scientist.getByRole('link', { name: 'Networks' }).click();
    await scientist.locator('summary', { hasText: 'Submit a network' }).click();
    await scientist.getByLabel('Scope', { exact: true }).last().fill('lab-demo-one');
    await scientist.getByLabel('Name', { exact: true }).last().fill(hostile);
    const steps = [
      ...Array.from({ length: 5 }, (_, i) => ({
        name: `step-${i}`,
        protocol: 'sleep',
        inputs: { seconds: 0.3, i },
      })),
      {
        name: 'doomed',
        protocol: 'sleep',
        inputs: { seconds: 0.1, fail: 'ValueError: the input was negative' },
      },
    ];
    await scientist.getByLabel(/^Transformations/).fill(JSON.stringify(steps));
    await scientist.getByRole('button', { name: 'Submit', exact: true }).click();
    await scientist.waitForURL(/\/console\/networks\/[^/?]+\?done=/).catch(async (error: unknown) => {
      console.error(scientist.url(), (await scientist.content()).slice(0, 3000));
      throw error;
    });
    expect(await scientist.locator('.notice').textContent()).toContain('6 tasks actioned');
    expect(await scientist.locator('h1').textContent()).toBe(`Network ${hostile}`);
    expect(await scientist.locator('img[src="x"]').count()).toBe(0);
    const networkUrl = scientist.url().split('?')[0] as string;

    // The operator watches the queue drain on the overview, which refreshes without a reload.
    await operator.getByRole('link', { name: 'Overview' }).click();
    await operator.evaluate(() => ((globalThis as unknown as { notReloaded: boolean }).notReloaded = true));
    expect(await operator.locator('[data-status="waiting"]').textContent()).toBe('6');
    compute = new ComputeService({
      url: server.url,
      identifier: 'browser-compute',
      key: computeKey,
      name: 'browser-test',
      concurrency: 2,
      claimWaitMs: 500,
      protocols: await loadProtocols(),
    });
    void compute.start();
    await expect
      .poll(() => operator.locator('[data-status="complete"]').textContent(), { timeout: 30_000 })
      .toBe('5');
    await expect
      .poll(() => operator.locator('[data-status="error"]').textContent(), { timeout: 30_000 })
      .toBe('1');
    expect(
      await operator.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded),
    ).toBe(true);
    await shoot(operator, 'overview');

    // The scientist's network page followed along by itself.
    await scientist.goto(networkUrl);
    await expect
      .poll(() => scientist.locator('#network-live > p [data-count="complete"]').textContent())
      .toBe('5');

    // The operator finds the failed task and its error, and restarts it.
    await operator.getByRole('link', { name: 'Tasks' }).click();
    await operator.getByLabel('Status').selectOption('error');
    await operator.getByRole('button', { name: 'Filter' }).click();
    await shoot(operator, 'tasks');
    await operator.locator('#tasks-live a').first().click();
    expect(await operator.locator('pre.error-text').first().textContent()).toContain(
      'ValueError: the input was negative',
    );
    await shoot(operator, 'task');
    const failedTaskId = (await operator.locator('h1').textContent())?.replace('Task ', '') ?? '';
    await operator.getByRole('button', { name: /^Restart/ }).click();
    await expect.poll(() => operator.locator('.notice').textContent()).toContain('restarted 1 task');
    // Back on its network's hub, the compute service claims and runs it a second time.
    await expect
      .poll(
        async () =>
          (
            await server.store.db
              .selectFrom('tasks')
              .select('attempts')
              .where('id', '=', failedTaskId)
              .executeTakeFirst()
          )?.attempts,
        { timeout: 20_000 },
      )
      .toBe(2);
    const audit = await server.store.db
      .selectFrom('audit_log')
      .select(['actor', 'action'])
      .where('action', '=', 'task.restart')
      .execute();
    expect(audit).toEqual([{ actor: 'user:operator', action: 'task.restart' }]);

    // Negative checks run in a page of their own: their refusals are meant to log errors.
    const probe = await scientistContext.newPage();
    probe.removeAllListeners('console');
    const forged = await scientistContext.request.post(`${server.url}/console/networks`, {
      form: { scope: 'lab-demo-one', name: 'forged', transformations: '[{"name":"a","protocol":"echo"}]' },
    });
    expect(forged.status()).toBe(403);
    expect(await forged.text()).toContain('CSRF token is missing or wrong');
    const forgedRows = await server.store.db
      .selectFrom('networks')
      .select('name')
      .where('name', '=', 'forged')
      .execute();
    expect(forgedRows).toEqual([]);
    await operator.goto(`${server.url}/console/networks`);
    await operator.locator('summary', { hasText: 'Submit a network' }).click();
    await operator.getByLabel('Scope', { exact: true }).last().fill('ops-private-net');
    await operator.getByLabel('Name', { exact: true }).last().fill('operators-only');
    await operator.getByRole('button', { name: 'Submit' }).click();
    await expect.poll(() => operator.locator('.notice').textContent()).toContain('submitted');
    const hidden = await scientistContext.request.get(operator.url().split('?')[0] as string);
    expect(hidden.status()).toBe(404);
    expect(await hidden.text()).not.toContain('operators-only');
    await probe.close();

    // Screenshots of the remaining pages, then the operator disables the scientist.
    for (const [name, pathname] of [
      ['networks', '/console/networks'],
      ['compute', '/console/compute'],
      ['identities', '/console/identities'],
      ['identity', '/console/identities/user/scientist'],
      ['audit', '/console/audit'],
      ['maintenance', '/console/maintenance'],
    ] as const) {
      await operator.goto(`${server.url}${pathname}`);
      await shoot(operator, name);
    }
    await operator.goto(networkUrl);
    await shoot(operator, 'network');
    await operator.goto(`${server.url}/console/backups`);
    await operator.getByRole('button', { name: 'Back up now' }).click();
    await expect
      .poll(() => operator.locator('.notice').textContent(), { timeout: 30_000 })
      .toContain('written');
    await shoot(operator, 'backups');

    await scientist.goto(`${server.url}/console/tasks`);
    await operator.goto(`${server.url}/console/identities`);
    await operator
      .locator('tr', { hasText: 'user:scientist' })
      .getByRole('button', { name: 'Disable' })
      .click();
    await expect.poll(() => operator.locator('.notice').textContent()).toContain('disabled user identity');
    // The scientist's open page notices by itself that the session ended.
    await scientist.waitForURL(/\/console\/signin/, { timeout: 8000 });
    await shoot(scientist, 'signin');

    expect(offSite).toEqual([]);
    expect(consoleErrors).toEqual([]);
  }, 120_000);
});
