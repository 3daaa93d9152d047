import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError, toAppError } from '../../lib/errors.js';

describe('AppError as JSON', () => {
  it('serialises through JSON.stringify with its code, details and cause, and never a stack', () => {
    const driver = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const error = new AppError('TARGET_UNREACHABLE', 'The target database does not answer.', {
      cause: driver,
      details: [{ field: '/target/connectionSecret', message: 'unreachable', value: 'sales-db' }],
    });
    // JSON.stringify calls toJSON with the property key ("error" here): that must not switch anything on.
    const logged = JSON.parse(JSON.stringify({ error }));
    assert.deepEqual(logged.error, {
      code: 'TARGET_UNREACHABLE',
      message: 'The target database does not answer.',
      details: [{ field: '/target/connectionSecret', message: 'unreachable', value: 'sales-db' }],
      cause: { name: 'Error', message: 'connect ECONNREFUSED 127.0.0.1:5432', code: 'ECONNREFUSED' },
    });
    assert.doesNotMatch(JSON.stringify({ error }), /stack|at /);
  });

  it('nests a coded cause as its own JSON and leaves cause out when there is none', () => {
    const inner = new AppError('QUEUE_UNAVAILABLE', 'Service Bus did not answer.');
    const outer = toAppError(new AppError('INTERNAL', 'Enqueue failed.', { cause: inner }));
    assert.deepEqual(outer.toJSON(), {
      code: 'INTERNAL',
      message: 'Enqueue failed.',
      cause: { code: 'QUEUE_UNAVAILABLE', message: 'Service Bus did not answer.' },
    });
    assert.equal('cause' in inner.toJSON(), false);
  });
});
