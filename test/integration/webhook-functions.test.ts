import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import functions from '@azure/functions';
import { applyChanges } from '../../functions/changes-queue.js';
import { health } from '../../functions/health.js';
import { openApi } from '../../functions/openapi.js';
import { dataverseWebhook } from '../../functions/webhook.js';
import { setDefaultLogLevel } from '../../lib/log.js';
import { CHANGES_QUEUE } from '../../lib/queue/envelope.js';
import { closeRuntime } from '../../lib/runtime.js';
import { type PipelineStack, startPipelineStack } from '../support/pipeline-stack.js';

// The package is CommonJS; its classes are reached through the default export under ESM.
const { HttpRequest, InvocationContext } = functions;
type HttpRequest = InstanceType<typeof HttpRequest>;

const fixtures = join(process.cwd(), 'test', 'fixtures', 'webhooks');
const fixture = (name: string) => readFileSync(join(fixtures, name), 'utf8');

function post(body: string): HttpRequest {
  return new HttpRequest({
    method: 'POST',
    url: 'http://localhost/api/webhooks/dataverse',
    body: { string: body },
    headers: { 'content-type': 'application/json' },
  });
}

const context = (functionName: string) => new InvocationContext({ functionName, invocationId: crypto.randomUUID() });

/**
 * The trigger files themselves, called the way the Functions host calls them (`HttpRequest`,
 * `InvocationContext`), against real parts: PostgreSQL, Azurite and the AMQP stand-in.
 */
describe('the webhook and apply functions, through @azure/functions request and context objects', () => {
  let stack: PipelineStack;
  const create = JSON.parse(fixture('create-account.json')) as { OrganizationId: string };

  before(async () => {
    stack = await startPipelineStack();
    Object.assign(process.env, stack.settings);
    await stack.createProfile({
      organizationId: create.OrganizationId,
      entities: ['account', 'contact'],
      target: { kind: 'postgres', connectionSecret: 'target', tablePrefix: 'fx' },
    });
  });

  after(async () => {
    await closeRuntime();
    await stack?.[Symbol.asyncDispose]();
  });

  /** Receives what the webhook enqueued and hands it to the apply function, as the trigger would. */
  async function applyQueued(): Promise<number> {
    const receiver = stack.runtime.serviceBus.createReceiver(CHANGES_QUEUE);
    try {
      const messages = await receiver.receiveMessages(100, { maxWaitTimeInMs: 1000 });
      if (messages.length) {
        await applyChanges(
          messages.map((m) => m.body),
          context('applyChanges'),
        );
        await Promise.all(messages.map((m) => receiver.completeMessage(m)));
      }
      return messages.length;
    } finally {
      await receiver.close();
    }
  }

  it('answers health and the OpenAPI document', async () => {
    const h = await health(new HttpRequest({ method: 'GET', url: 'http://localhost/api/health' }), context('health'));
    assert.equal(h.status, 200);
    const doc = await openApi(
      new HttpRequest({ method: 'GET', url: 'http://localhost/api/openapi.json' }),
      context('openapi'),
    );
    assert.equal((doc.jsonBody as { openapi: string }).openapi.slice(0, 3), '3.1');
  });

  it('writes every typed value of a realistic Create into its DES-layout column', async () => {
    const answer = await dataverseWebhook(post(fixture('create-account.json')), context('dataverseWebhook'));
    assert.equal(answer.status, 202, JSON.stringify(answer.jsonBody));
    assert.equal(await applyQueued(), 1);

    const row = (
      await stack.db.pool.query(
        `SELECT name, numberofemployees::text AS employees, new_bignumber::text AS big, new_precise::text AS precise,
                revenue::text AS revenue, donotemail, donotphone, createdon, primarycontactid::text AS contact,
                primarycontactid_entitytype AS contact_type, industrycode, statecode, new_regions, new_colors,
                versionnumber::text AS version, sinkcreatedon, sinkmodifiedon
           FROM fx_account WHERE id = $1`,
        ['0f9a4b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b'],
      )
    ).rows[0];
    assert.ok(row, 'the row exists');
    assert.equal(row.name, 'Contoso "Europe" / Ltd é');
    assert.equal(Number(row.employees), 250);
    assert.equal(row.big.replace(/\.0+$/, ''), '9223372036854775807', 'a 64-bit value keeps every digit');
    assert.equal(row.precise.replace(/0+$/, ''), '12345678901234567890.1234567891', 'a decimal keeps every digit');
    assert.equal(Number(row.revenue), 1234567.89);
    assert.equal(row.donotemail, false);
    assert.equal(row.donotphone, true);
    assert.equal((row.createdon as Date).toISOString(), '2023-11-14T22:13:20.000Z');
    assert.equal(row.contact_type, 'contact');
    assert.match(row.contact, /^[0-9a-f-]{36}$/);
    assert.equal(Number(row.industrycode), 7);
    assert.equal(Number(row.statecode), 0);
    assert.equal(row.new_regions, '1,3');
    assert.equal(row.new_colors, '2');
    // `description` arrived as a bare null: without metadata there is no type to give a column, so none is made.
    assert.ok(row.version, 'versionnumber is stored');
    assert.ok(row.sinkcreatedon instanceof Date && row.sinkmodifiedon instanceof Date);
    const columns = await stack.db.pool.query(
      "SELECT column_name FROM information_schema.columns WHERE table_name = 'fx_account' AND column_name = 'entityimage'",
    );
    assert.equal(columns.rowCount, 0, 'image bytes are not a column');
  });

  it('gives each bad input the right answer and changes nothing', async () => {
    const good = fixture('create-account.json');
    const cases: Array<{ what: string; body: string; status: number; code?: string; mentions?: RegExp }> = [
      { what: 'malformed JSON', body: good.slice(0, 200), status: 400, code: 'MALFORMED_JSON' },
      { what: 'not an object', body: '[1, 2, 3]', status: 400, code: 'VALIDATION_FAILED' },
      {
        what: 'a wrong type (OptionSetValue with a text value)',
        body: good.replace('"Value": 7', '"Value": "seven"'),
        status: 400,
        mentions: /Attributes\[\d+\]/,
      },
      {
        what: 'SQL in the entity name',
        body: good.replaceAll('"account"', '"account; DROP TABLE fx_account; --"'),
        status: 400,
        code: 'ILLEGAL_IDENTIFIER',
      },
      {
        what: 'SQL in an attribute name',
        body: good.replace('"key": "donotemail"', '"key": "donotemail\\" = 1; DELETE FROM fx_account; --"'),
        status: 400,
        code: 'ILLEGAL_IDENTIFIER',
      },
      {
        what: 'a bad GUID',
        body: good.replaceAll('0f9a4b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b', 'not-a-guid'),
        status: 400,
        mentions: /PrimaryEntityId/,
      },
    ];
    const tablesBefore = await stack.db.pool.query(
      "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'",
    );
    const rowsBefore = await stack.db.pool.query('SELECT count(*)::int AS n FROM fx_account');
    for (const c of cases) {
      const answer = await dataverseWebhook(post(c.body), context('dataverseWebhook'));
      assert.equal(answer.status, c.status, `${c.what}: ${JSON.stringify(answer.jsonBody)}`);
      const body = answer.jsonBody as { code: string; message: string };
      if (c.code) assert.equal(body.code, c.code, c.what);
      if (c.mentions) assert.match(JSON.stringify(body), c.mentions, c.what);
      assert.ok(body.message.length > 10, `${c.what}: the answer says what was wrong`);
    }
    // An entity nobody exports is not an error Dataverse should retry: 200, ignored, nothing queued.
    const unknown = await dataverseWebhook(
      post(good.replaceAll('"account"', '"new_unexported"')),
      context('dataverseWebhook'),
    );
    assert.equal(unknown.status, 200);
    assert.match(String((unknown.jsonBody as { ignored?: string }).ignored), /new_unexported/);

    assert.deepEqual(stack.standIn.stats(CHANGES_QUEUE), { active: 0, scheduled: 0, locked: 0, deadLetter: 0 });
    const tablesAfter = await stack.db.pool.query(
      "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'",
    );
    assert.equal(tablesAfter.rows[0].n, tablesBefore.rows[0].n, 'no table created');
    const rowsAfter = await stack.db.pool.query('SELECT count(*)::int AS n FROM fx_account');
    assert.equal(rowsAfter.rows[0].n, rowsBefore.rows[0].n, 'no row changed');
  });

  it("carries Dataverse's correlation id in the log lines of ingest and of apply", async () => {
    const lines: string[] = [];
    const capture = (functionName: string) =>
      new InvocationContext({
        functionName,
        invocationId: crypto.randomUUID(),
        logHandler: (_level, ...args) => lines.push(args.map(String).join(' ')),
      });
    const raw = fixture('update-contact-partial.json');
    const body = raw.replaceAll((JSON.parse(raw) as { OrganizationId: string }).OrganizationId, create.OrganizationId);
    const correlationId = (JSON.parse(body) as { CorrelationId: string }).CorrelationId;
    const level = setDefaultLogLevel('debug');
    try {
      const answer = await dataverseWebhook(post(body), capture('dataverseWebhook'));
      assert.equal(answer.status, 202, JSON.stringify(answer.jsonBody));
      const receiver = stack.runtime.serviceBus.createReceiver(CHANGES_QUEUE);
      const messages = await receiver.receiveMessages(10, { maxWaitTimeInMs: 1000 });
      await applyChanges(
        messages.map((m) => m.body),
        capture('applyChanges'),
      );
      await Promise.all(messages.map((m) => receiver.completeMessage(m)));
      await receiver.close();
    } finally {
      setDefaultLogLevel(level);
    }
    const tagged = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.correlationId === correlationId);
    assert.ok(
      tagged.some((l) => l.functionName === 'dataverseWebhook' && l.message === 'webhook accepted'),
      lines.join('\n'),
    );
    assert.ok(
      tagged.some((l) => l.functionName === 'applyChanges' && l.message === 'change applied'),
      lines.join('\n'),
    );
  });

  it('skips a stale duplicate and keeps a deleted record deleted', async () => {
    const id = '0f9a4b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b';
    const del = fixture('delete-account.json');
    const createAgain = await dataverseWebhook(post(fixture('create-account.json')), context('dataverseWebhook'));
    assert.equal(createAgain.status, 202);
    assert.equal(await applyQueued(), 1);
    const deleted = await dataverseWebhook(post(del), context('dataverseWebhook'));
    assert.equal(deleted.status, 202, JSON.stringify(deleted.jsonBody));
    await applyQueued();
    // The original Create arrives once more (a Dataverse retry), after the delete.
    await dataverseWebhook(post(fixture('create-account.json')), context('dataverseWebhook'));
    await applyQueued();
    const rows = await stack.db.pool.query('SELECT count(*)::int AS n FROM fx_account WHERE id = $1', [id]);
    assert.equal(rows.rows[0].n, 0, 'no resurrection');
  });
});
