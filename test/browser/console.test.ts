/**
 * The admin console in Debian's Chromium against `npm start`'s stack: the wizard, activation and the status
 * grid, a failed record with its CSV and resync, the audit trail, a reader who can change nothing, and the
 * wizard by keyboard alone. A screenshot of each screen lands in .local/test/screenshots.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { buildRemoteExecutionContext, serializeRemoteExecutionContext } from '../../dev/dataverse-payloads.js';
import { encodePrincipal } from '../../lib/auth/principal.js';
import { eventually, type StackProcess, startStackProcess } from '../e2e/support/stack-process.js';
import { launchChromium, screenshot, tabTo } from './support/browser.js';

describe('the admin console in Chromium', { timeout: 300_000 }, () => {
  let stack: StackProcess;
  let browser: Browser;
  let profileId: string;

  before(async () => {
    // Both start at once; whichever fails, the other is kept so `after` stops it (a leaked stack would hold the run).
    const [started, launched] = await Promise.allSettled([
      // Contacts reach the partitioned copy's threshold (10,000 estimated rows); only one test copies them.
      startStackProcess({ args: ['--accounts=300', '--contacts=12000'] }),
      launchChromium(),
    ]);
    if (started.status === 'fulfilled') stack = started.value;
    if (launched.status === 'fulfilled') browser = launched.value;
    if (started.status === 'rejected') throw started.reason;
    if (launched.status === 'rejected') throw launched.reason;
  });

  after(async () => {
    await browser?.close();
    await stack?.[Symbol.asyncDispose]();
  });

  const adminPage = async (): Promise<Page> => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(30_000);
    await page.goto(stack.info.consoleUrl);
    await page.getByTestId('signed-in').getByText('Signed in as Development admin (local)').waitFor();
    return page;
  };

  it('writes consoleUrl to stack.json and opens signed in as the development admin', async () => {
    assert.equal(stack.info.consoleUrl, `${stack.info.apiBaseUrl}/admin/`);
    const page = await adminPage();
    await page.getByRole('heading', { name: 'Export profiles' }).waitFor();
    await screenshot(page, '01-profile-list-empty');
    await page.close();
  });

  it('creates a profile through the wizard, shows an API message on its field, then creates and activates', async () => {
    const page = await adminPage();
    await page.getByRole('link', { name: 'New profile' }).first().click();
    await page.getByLabel('Name').fill('Accounts from the console');
    await page.getByLabel('Organization URL').fill(stack.info.sampleOrg.url);
    await page.getByLabel('Connection secret').fill('local-postgres');
    await page.getByLabel('Table prefix').fill('9 not a prefix');
    await screenshot(page, '02-wizard-properties');
    await page.getByRole('button', { name: 'Next' }).click();

    await page.getByRole('heading', { name: 'Entities', exact: true }).waitFor();
    await page.getByLabel('Search entities').fill('acc');
    assert.equal(await page.getByRole('checkbox', { name: 'Contact' }).count(), 0, 'search filters the list');
    await page.getByRole('checkbox', { name: 'Account' }).check();
    await page.getByRole('cell', { name: 'On', exact: true }).first().waitFor();
    await screenshot(page, '03-wizard-entities');
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('heading', { name: 'Relationships' }).waitFor();
    await screenshot(page, '04-wizard-relationships');
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('heading', { name: 'Summary' }).waitFor();
    await screenshot(page, '05-wizard-summary');

    // The API refuses the prefix: the wizard goes back to Properties and shows the message on that field.
    await page.getByRole('button', { name: 'Create and activate' }).click();
    const prefix = page.getByLabel('Table prefix');
    await prefix.and(page.locator('[aria-invalid="true"]')).waitFor();
    const describedBy = (await prefix.getAttribute('aria-describedby')) ?? '';
    assert.match(
      await page.locator(`[id="${describedBy.split(' ').at(-1)}"]`).innerText(),
      /9 not a prefix" is not allowed/,
    );
    await screenshot(page, '06-wizard-field-error');
    await prefix.fill('ui');
    for (let i = 0; i < 3; i++) await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('button', { name: 'Create and activate' }).click();

    await page.waitForURL(/#\/profiles\/[0-9a-f-]{36}$/);
    profileId = page.url().split('/').at(-1)!;
    await page
      .getByRole('heading', { name: /Accounts from the console/ })
      .getByText('Active')
      .waitFor();
    await page.getByTestId('overall-sync').getByText('Completed').waitFor({ timeout: 90_000 });
    const row = page.locator('tr[data-entity="account"]');
    assert.equal(await row.getByTestId('sync-state').innerText(), 'Completed');
    assert.match((await row.locator('progress').getAttribute('value')) ?? '', /^100$/);
    await screenshot(page, '07-profile-completed');
    await page.close();
  });

  it('shows a record the target refused, downloads it as CSV and resyncs it', async () => {
    const page = await adminPage();
    await page.goto(`${stack.info.consoleUrl}#/profiles/${profileId}`);
    await page.getByRole('heading', { name: 'Failure log' }).waitFor();
    await page.getByTestId('no-failures').waitFor();

    const accounts = (await (
      await fetch(`${stack.info.sampleOrg.url}/api/data/v9.2/accounts?$top=1&$select=accountid`)
    ).json()) as { value: { accountid: string }[] };
    const accountId = accounts.value[0].accountid;
    const delivered = await fetch(
      `${stack.info.apiBaseUrl}/webhooks/dataverse?code=${encodeURIComponent(stack.info.functionKey)}`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: serializeRemoteExecutionContext(
          buildRemoteExecutionContext({
            organizationId: stack.info.sampleOrg.organizationId,
            messageName: 'Update',
            entity: 'account',
            id: accountId,
            versionNumber: String(Number.MAX_SAFE_INTEGER),
            attributes: { revenue: { type: 'string', value: 'not a number' } },
          }),
        ),
      },
    );
    assert.equal(delivered.status, 202);

    const failure = page.locator('tr.failure', { hasText: accountId });
    await failure.waitFor({ timeout: 60_000 });
    assert.match(await failure.innerText(), /TARGET_PERMANENT/);
    await eventually(
      async () =>
        (await page.locator('tr[data-entity="account"]').getByTestId('failed').innerText()) === '1' ? true : undefined,
      30_000,
      'the grid counting the failure',
    );
    await screenshot(page, '08-failure-log');

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download CSV' }).click(),
    ]);
    assert.match(download.suggestedFilename(), /^failures-.*\.csv$/);
    const csv = await readFile((await download.path())!, 'utf8');
    assert.match(csv, new RegExp(accountId));

    await page.getByRole('button', { name: 'Resync failed records' }).click();
    await page.getByText(/Resync finished: .*succeeded 1/).waitFor({ timeout: 60_000 });
    await page.getByTestId('no-failures').waitFor();
    await screenshot(page, '09-after-resync');
    await page.close();
  });

  it('lists the profile and shows the audit trail of who did what', async () => {
    const page = await adminPage();
    const row = page.getByRole('row', { name: /Accounts from the console/ });
    await row.waitFor();
    assert.match(await row.innerText(), /Active/);
    await screenshot(page, '10-profile-list');
    await page.getByRole('link', { name: 'Audit trail' }).click();
    await page.getByRole('heading', { name: 'Audit trail' }).waitFor();
    const entries = page.locator('tr.audit-entry');
    await entries.filter({ hasText: 'resync' }).waitFor();
    const text = await entries.allInnerTexts();
    assert.deepEqual(
      text.map((t) => t.split('\t')[2]),
      ['resync', 'activate', 'create'],
    );
    assert.ok(text.every((t) => t.includes('Development admin (local)')));
    await screenshot(page, '11-audit-trail');
    await page.close();
  });

  it('shows a reader everything and no way to change it; a write is refused with 403', async () => {
    const reader = encodePrincipal({ name: 'rita@contoso.com', roles: ['Export.Reader'] });
    const context = await browser.newContext({
      viewport: { width: 390, height: 844 },
      extraHTTPHeaders: { 'x-ms-client-principal': reader },
    });
    const page = await context.newPage();
    await page.goto(`${stack.info.consoleUrl}#/profiles/${profileId}`);
    await page.getByText('Signed in as rita@contoso.com (Export.Reader) — read only').waitFor();
    await page.getByTestId('overall-sync').getByText('Completed').waitFor();
    for (const name of ['Activate', 'Deactivate', 'Delete', 'Resync failed records']) {
      assert.equal(await page.getByRole('button', { name }).count(), 0, `no ${name} button`);
    }
    assert.equal(await page.getByRole('link', { name: /New profile|Edit/ }).count(), 0);
    await page.getByRole('button', { name: 'Download CSV' }).waitFor();
    await screenshot(page, '12-reader-phone');
    const status = await page.evaluate(
      async (id) => (await fetch(`../profiles/${id}/deactivate`, { method: 'POST' })).status,
      profileId,
    );
    assert.equal(status, 403);
    await context.close();
  });

  it('runs the wizard by keyboard alone, then deactivates and deletes with dropTables', async () => {
    const page = await adminPage();
    await page.goto(`${stack.info.consoleUrl}#/new`);
    // The screen, then each step, moves the focus to its heading once rendered (an effect, after paint): keys
    // pressed before that would go where the focus was, and the focus would jump back under them.
    const focusOn = (id: string, heading: string) =>
      page.waitForFunction(
        ([id, name]) => {
          // biome-ignore lint/suspicious/noExplicitAny: runs in the page, where the DOM types this project does not load apply
          const el = (globalThis as any).document.activeElement;
          return el?.id === id && el.textContent.trim() === name;
        },
        [id, heading],
      );
    const stepFocused = (heading: string) => focusOn('wizard-step', heading);
    await focusOn('wizard-title', 'New export profile');
    const field = (name: string) => (f: { name: string }) => f.name === name;
    await tabTo(page, field('Name'), 'Name');
    await page.keyboard.type('Typed by keyboard');
    await tabTo(page, field('Organization URL'), 'Organization URL');
    await page.keyboard.type(stack.info.sampleOrg.url);
    await tabTo(page, field('Connection secret'), 'Connection secret');
    await page.keyboard.type('local-postgres');
    await tabTo(page, field('Table prefix'), 'Table prefix');
    await page.keyboard.type('kb');
    assert.equal(await page.getByLabel('Name').inputValue(), 'Typed by keyboard');
    await tabTo(page, (f) => f.tag === 'button' && f.name === 'Next', 'Next');
    await page.keyboard.press('Enter');
    await stepFocused('Entities');
    await tabTo(page, (f) => f.type === 'checkbox' && f.name === 'Contact', 'the Contact checkbox');
    await page.keyboard.press('Space');
    for (const heading of ['Relationships', 'Summary']) {
      await tabTo(page, (f) => f.tag === 'button' && f.name === 'Next', 'Next');
      await page.keyboard.press('Enter');
      await stepFocused(heading);
    }
    assert.match(await page.locator('dl.summary').innerText(), /contact/);
    await tabTo(page, (f) => f.tag === 'button' && f.name === 'Create', 'Create');
    const outline = await page.evaluate(() => {
      // biome-ignore lint/suspicious/noExplicitAny: runs in the page, where the DOM types this project does not load apply
      const page = globalThis as any;
      return page.getComputedStyle(page.document.activeElement).outlineStyle as string;
    });
    assert.notEqual(outline, 'none', 'the focused button shows its focus');
    await page.keyboard.press('Enter');
    await page
      .getByRole('heading', { name: /Typed by keyboard/ })
      .getByText('Inactive')
      .waitFor();

    // Back to the first profile: deactivate, then delete with its tables, confirming in the dialog.
    await page.goto(`${stack.info.consoleUrl}#/profiles/${profileId}`);
    await page.getByRole('button', { name: 'Deactivate' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Deactivate' }).click();
    await page
      .getByRole('heading', { name: /Accounts from the console/ })
      .getByText('Inactive')
      .waitFor();
    await page.getByRole('button', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Also drop its tables in the target database').check();
    await screenshot(page, '13-delete-dialog');
    await dialog.getByRole('button', { name: 'Delete profile' }).click();
    await page.getByRole('heading', { name: 'Export profiles' }).waitFor();
    assert.equal(await page.getByRole('row', { name: /Accounts from the console/ }).count(), 0);

    const audit = (await (
      await fetch(`${stack.info.apiBaseUrl}/audit?profileId=${profileId}`, {
        headers: { 'x-functions-key': stack.info.functionKey },
      })
    ).json()) as { entries: { action: string; before: unknown; after: unknown; details: unknown }[] };
    assert.deepEqual(
      audit.entries.map((e) => e.action),
      ['delete', 'deactivate', 'resync', 'activate', 'create'],
      'a deleted profile keeps its trail',
    );
    assert.deepEqual(audit.entries[0].details, { dropTables: true });
    assert.equal(audit.entries[0].after, null);
    await page.close();
  });

  it("shows a partitioned copy's partition count and its rows folded over the partitions", async () => {
    const api = (path: string, init: RequestInit = {}) =>
      fetch(`${stack.info.apiBaseUrl}${path}`, {
        ...init,
        headers: { 'x-functions-key': stack.info.functionKey, 'content-type': 'application/json' },
      });
    const created = await api('/profiles', {
      method: 'POST',
      body: JSON.stringify({
        name: 'Contacts in partitions',
        organizationId: stack.info.sampleOrg.organizationId,
        source: { url: stack.info.sampleOrg.url },
        target: { kind: 'postgres', connectionSecret: 'local-postgres', tablePrefix: 'parts' },
        entities: ['contact'],
      }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const { id } = (await created.json()) as { id: string };
    assert.ok((await api(`/profiles/${id}/activate`, { method: 'POST' })).ok);

    const page = await adminPage();
    await page.goto(`${stack.info.consoleUrl}#/profiles/${id}`);
    await page.getByTestId('overall-sync').getByText('Completed').waitFor({ timeout: 120_000 });
    const status = (await (await api(`/profiles/${id}/status`)).json()) as {
      entities: { entity: string; rowsCopied: number; rowsEstimated: number; partitions: { rowsCopied: number }[] }[];
    };
    const contact = status.entities.find((e) => e.entity === 'contact')!;
    assert.ok(contact.partitions.length >= 2, `a copy of ${contact.rowsEstimated} rows is partitioned`);
    assert.equal(contact.rowsCopied, stack.info.sampleOrg.counts.contact);
    assert.equal(
      contact.partitions.reduce((sum, p) => sum + p.rowsCopied, 0),
      contact.rowsCopied,
      'rowsCopied is the sum over the partitions',
    );

    const row = page.locator('tr[data-entity="contact"]');
    const partitions = row.getByTestId('partitions');
    await partitions.waitFor();
    assert.equal((await partitions.innerText()).trim(), `· ${contact.partitions.length} partitions`);
    assert.equal(
      await partitions.getAttribute('title'),
      `${contact.partitions.length} of ${contact.partitions.length} id ranges read`,
    );
    // "12,000 / 12,000 · 3 partitions": the folded rowsCopied of rowsEstimated, digits as the locale groups them.
    const progress = (await partitions.locator('xpath=..').innerText()).split('·')[0];
    const [copied, estimated] = progress.split('/').map((n) => Number(n.replace(/\D/g, '')));
    assert.deepEqual([copied, estimated], [contact.rowsCopied, contact.rowsEstimated]);
    assert.equal(await row.locator('progress').getAttribute('value'), '100');
    await screenshot(page, '14-partitioned-copy');
    await page.close();
  });
});
