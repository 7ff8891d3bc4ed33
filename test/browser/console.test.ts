// The web console in a real browser (headless Chromium through playwright-core) against a real secure fleet: a TLS
// controller with tokens, nats-server, three agents and the example app. Given an operator and a viewer signed in
// through the sign-in page, when a release runs with an approval before its second batch, then
// (1) the console shows it progressing live (no reload), (2) the viewer has no action buttons and a forged
// releaseAction is refused 403 without a change record, (3) the operator approves with a comment and the change record
// shows it, in the page and in `fleetwave release show`.
//
// playwright-core: drives the system's Chromium (/usr/bin/chromium) without downloading browsers of its own.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConsole } from '../../deploy/console/build.js';
import { buildEdition } from '../../examples/demo/package.js';
import { freePort, repoPath, waitFor } from '../harness/fleet.js';
import { startSecureFleet, type SecureFleet } from '../integration/secure-fleet.js';

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
if (!HAS_CHROMIUM) console.warn(`test/browser/console.test.ts skipped: no ${CHROMIUM} (apt-get install chromium)`);
const AGENTS = ['web-1', 'web-2', 'web-3'];
/** Waits in the page; generous for a loaded 2-core machine, each ends as soon as the state is there. */
const UI_MS = 60_000;

describe.skipIf(!HAS_CHROMIUM)('the web console against a secure fleet', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-console-'));
  let fleet: SecureFleet;
  let browser: Browser;
  let operator: Page;
  let viewer: Page;
  let releaseId = '';
  const base = () => fleet.controller.httpUrl;

  beforeAll(async () => {
    // The controller serves dist/console (make build makes it; built here too so the suite runs from a fresh tsc).
    await buildConsole();
    fleet = await startSecureFleet(dir);
    const join_ = await fleet.newToken('join-web', 'agent');
    for (const id of AGENTS) await fleet.launchAgent(id, { group: 'web', instances: { shop: await freePort() }, args: ['--join-token', join_] });
    expect((await fleet.cli(fleet.admin, ['app', 'create', 'shop', '--start', 'node server.js', '--health-path', '/healthz'])).code).toBe(0);
    const pkg = await buildEdition({ sourceDir: repoPath('examples', 'app'), edition: '1.0', outDir: dir, name: 'shop' });
    const installed = await fleet.cli(fleet.admin, ['edition', 'install', 'shop', '1.0', '--file', pkg.path, '--description', 'first edition']);
    expect(installed.code, installed.stderr).toBe(0);
    await waitFor('3 agents connected', async () => {
      const res = await fleet.cli(fleet.admin, ['agent', 'list', '--output', 'json']);
      return res.code === 0 && (res.stdout.match(/"connected"/g) ?? []).length === AGENTS.length;
    }, 60_000);

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking'] });
    operator = await signedIn(await newContext(), await fleet.newToken('olivia', 'operator'));
    viewer = await signedIn(await newContext(), await fleet.newToken('victor', 'viewer'));
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await fleet?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function newContext(): Promise<BrowserContext> {
    return browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 900 } });
  }

  /** Opens the console without a session (sent to the sign-in page), signs in with the token, lands on the console. */
  async function signedIn(context: BrowserContext, token: string): Promise<Page> {
    const page = await context.newPage();
    await page.goto(`${base()}/`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.getByLabel('Access token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base()}/`, { timeout: UI_MS });
    await page.getByRole('heading', { name: 'Fleet' }).waitFor({ timeout: UI_MS });
    return page;
  }

  it('signs in only with a real token, and shows the fleet in groups with counts by status', async () => {
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(`${base()}/login`);
    await page.getByLabel('Access token').fill('fwt_forged');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: /./ }).waitFor({ timeout: UI_MS });
    expect(new URL(page.url()).pathname).toBe('/login');
    await context.close();

    // The fleet: group web with its 3 instances counted, tiles only once the group is opened.
    await operator.getByRole('button', { name: /web · 3/ }).waitFor({ timeout: UI_MS });
    expect(await operator.locator('.tile').count()).toBe(0);
    // Keyboard only: the group opens with Enter.
    await operator.getByRole('button', { name: /web · 3/ }).focus();
    await operator.keyboard.press('Enter');
    await operator.locator('.tile').nth(2).waitFor({ timeout: UI_MS });
    expect(await operator.locator('.tile').allInnerTexts()).toEqual(AGENTS.map((id) => expect.stringContaining(id)));
    // The filter box goes to the server's query: an edition nothing runs leaves no group.
    await operator.getByLabel('Edition', { exact: true }).fill('9.9');
    await operator.getByRole('button', { name: 'Filter' }).click();
    await operator.getByText('— 0 instances').waitFor({ timeout: UI_MS });
    expect(await operator.getByRole('button', { name: /web · / }).count()).toBe(0);
    await operator.getByLabel('Edition', { exact: true }).fill('');
    await operator.getByRole('button', { name: 'Filter' }).click();
    await operator.getByRole('button', { name: /web · 3/ }).waitFor({ timeout: UI_MS });
  });

  it('(1) shows a release progressing live, without a reload', async () => {
    for (const page of [operator, viewer]) {
      await page.evaluate(() => ((window as unknown as { noReload: boolean }).noReload = true));
      await page.getByRole('link', { name: 'Releases' }).click();
      await page.getByRole('heading', { name: 'Releases' }).waitFor({ timeout: UI_MS });
    }
    // When a release with an approval before batch 2 is created (by the CLI, not the page)
    const created = await fleet.cli(fleet.admin, ['release', 'create', 'shop', '--edition', '1.0', '--group', 'all', '--batches', '3', '--batch-mode', 'auto', '--approval-before', '2', '--drain', '1s']);
    expect(created.code, created.stderr).toBe(0);
    releaseId = created.stdout.trim().split(/\s+/).pop()!;
    // Then it appears in both pages' lists by itself, and its page reaches the checkpoint
    for (const page of [operator, viewer]) {
      await page.getByRole('link', { name: releaseId }).click({ timeout: UI_MS });
      await page.getByRole('heading', { name: `Release ${releaseId}` }).waitFor({ timeout: UI_MS });
    }
    await viewer.getByText('approval before batch 2').first().waitFor({ timeout: UI_MS });
    await viewer.getByRole('listitem', { name: 'Batch 1: done' }).waitFor({ timeout: UI_MS });
    expect(await viewer.getByRole('listitem', { name: 'Batch 2: waiting' }).count()).toBe(1);
    // Each instance of batch 1 lists its steps with durations.
    expect(await viewer.locator('.instances tbody tr').first().innerText()).toMatch(/health ok \d/);
    for (const page of [operator, viewer]) expect(await page.evaluate(() => (window as unknown as { noReload?: boolean }).noReload)).toBe(true);
  });

  it('(2) gives a viewer no action buttons, and the API refuses a forged action with 403 and no change record', async () => {
    await viewer.getByRole('heading', { name: 'Change records' }).waitFor({ timeout: UI_MS });
    expect(await viewer.locator('.actions button').count()).toBe(0);
    expect(await viewer.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    const forged = await viewer.evaluate(async (id) => {
      const res = await fetch('/api/v1/rpc/releaseAction', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id, action: 'approve', comment: 'forged by the viewer' }) });
      return { status: res.status, body: await res.text() };
    }, releaseId);
    expect(forged.status, forged.body).toBe(403);
    const show = await fleet.cli(fleet.admin, ['release', 'show', releaseId]);
    expect(show.stdout).not.toMatch(/forged by the viewer/);
    expect(show.stdout).toMatch(/approval before batch 2/);
  });

  it('(3) lets an operator approve the checkpoint with a comment; the change record shows it, live in the viewer\'s page too', async () => {
    await operator.getByRole('button', { name: 'Approve' }).waitFor({ timeout: UI_MS });
    await operator.getByLabel('Comment').fill('canary looks good');
    // The README's picture: the operator's page at the checkpoint, the actions its role and the status allow.
    const shot = join(dir, 'console.png');
    await operator.screenshot({ path: shot, fullPage: true });
    if (process.env.FLEETWAVE_UPDATE_SCREENSHOT === '1') {
      mkdirSync(repoPath('docs'), { recursive: true });
      copyFileSync(shot, repoPath('docs', 'console.png'));
    }
    expect(readFileSync(shot).subarray(1, 4).toString()).toBe('PNG');
    await operator.getByRole('button', { name: 'Approve' }).click();
    await operator.getByRole('status').filter({ hasText: 'approve: done' }).waitFor({ timeout: UI_MS });
    for (const page of [operator, viewer]) {
      await page.locator('.changes').getByText('canary looks good').waitFor({ timeout: UI_MS });
      await page.locator('[data-testid="release-status"]').getByText('Released', { exact: true }).waitFor({ timeout: UI_MS });
      expect(await page.evaluate(() => (window as unknown as { noReload?: boolean }).noReload)).toBe(true);
    }
    expect(await viewer.getByRole('listitem', { name: 'Batch 3: done' }).count()).toBe(1);
    expect(await viewer.locator('.checkpoint').first().innerText()).toMatch(/passed by olivia: “canary looks good”/);
    const show = await fleet.cli(fleet.admin, ['release', 'show', releaseId]);
    expect(show.stdout).toMatch(/olivia.*approve.*canary looks good/);

  });

  it('lists the editions of the app with where each is active and how many instances keep it on disk', async () => {
    await operator.getByRole('link', { name: 'Editions' }).click();
    await operator.getByRole('heading', { name: 'Editions of shop' }).waitFor({ timeout: UI_MS });
    await operator.getByRole('row', { name: /1\.0 first edition .* web: 3 3 instances/ }).waitFor({ timeout: UI_MS });
  });

  it('signs out: the session cookie is gone and the console sends back to the sign-in page', async () => {
    await viewer.getByRole('button', { name: 'Sign out' }).click();
    await viewer.waitForURL(`${base()}/login`, { timeout: UI_MS });
    await viewer.goto(`${base()}/`);
    expect(new URL(viewer.url()).pathname).toBe('/login');
  });
});
