import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError, toAppError } from '../../lib/errors.js';
import { errorResult } from '../../lib/http/boundary.js';
import { createLogger } from '../../lib/log.js';
import { REDACTED, redactSecrets } from '../../lib/redact.js';

describe('redacting secrets from messages', () => {
  it('takes out the password of ADO.NET and URL connection strings, and Azure keys', () => {
    const cases: [string, string][] = [
      [
        'Server=tcp:x.database.windows.net;User Id=app;Password=hunter2;Database=sales',
        `Server=tcp:x.database.windows.net;User Id=app;Password=${REDACTED};Database=sales`,
      ],
      ['server=x;pwd = "se;cret" ;uid=a', `server=x;pwd = ${REDACTED} ;uid=a`],
      ['Password={br;aced}', `Password=${REDACTED}`],
      [
        'connect to postgres://nobody:s3cr%40t@db.example:5432/x failed',
        `connect to postgres://nobody:${REDACTED}@db.example:5432/x failed`,
      ],
      [
        'Endpoint=sb://ns/;SharedAccessKeyName=dev;SharedAccessKey=abc123=',
        `Endpoint=sb://ns/;SharedAccessKeyName=dev;SharedAccessKey=${REDACTED}`,
      ],
      [
        'DefaultEndpointsProtocol=https;AccountKey=Zm9vYmFy==;',
        `DefaultEndpointsProtocol=https;AccountKey=${REDACTED};`,
      ],
    ];
    for (const [text, expected] of cases) assert.equal(redactSecrets(text), expected);
  });

  it('takes out a known secret wherever a driver repeats it, and the password inside it', () => {
    const connectionString = 'postgres://app:Pa55word-xyz@db.internal:5432/sales';
    assert.equal(
      redactSecrets(`database "${connectionString}" does not exist; password Pa55word-xyz rejected`, [
        connectionString,
      ]),
      `database "${REDACTED}" does not exist; password ${REDACTED} rejected`,
    );
    const key = 'q8Zr1mW0uXkT9vB2yN4pL6sD3fH5jK7a+/Qe1Rt2Yu0=';
    assert.equal(redactSecrets(`getaddrinfo ENOTFOUND ${key}`, [key]), `getaddrinfo ENOTFOUND ${REDACTED}`);
  });

  it('leaves text without secrets as it was', () => {
    const text = 'connect ECONNREFUSED 127.0.0.1:5432; password authentication failed for user "app"';
    assert.equal(redactSecrets(text, ['abc']), text);
  });

  it('redacts at the boundaries: coded errors, their causes and details, API answers and log lines', () => {
    const driver = new Error('Login failed: Server=x;User Id=sa;Password=Topsecret1;');
    const error = new AppError('TARGET_UNREACHABLE', `cannot connect: ${driver.message}`, {
      cause: driver,
      details: [{ field: '/target', message: 'postgres://u:Topsecret1@h/db', value: 'Pwd=Topsecret1' }],
    });
    assert.doesNotMatch(JSON.stringify(errorResult(error)), /Topsecret1/);
    assert.doesNotMatch(toAppError(driver).message, /Topsecret1/);

    const lines: string[] = [];
    const logger = createLogger({ sink: (_level, line) => lines.push(line) });
    logger.error('target failed for postgres://u:Topsecret1@h/db', {
      error: driver,
      connection: 'Password=Topsecret1',
      nested: { list: ['pwd=Topsecret1'] },
    });
    assert.equal(lines.length, 1);
    assert.doesNotMatch(lines[0], /Topsecret1/);
    assert.match(lines[0], /postgres:\/\/u:\[redacted\]@h\/db/);
    assert.doesNotThrow(() => JSON.parse(lines[0]), 'the line stays JSON');
  });
});
