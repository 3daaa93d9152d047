/**
 * Activation's Azure SQL check, judged from the row its one batch answers (no SQL Server runs here): each gap
 * is named with the statement that closes it; READ_COMMITTED_SNAPSHOT off only warns.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { judgeMssqlReadiness, readinessSql } from '../../lib/sink/dialects/mssql-readiness.js';

const ready = {
  database_name: 'sales',
  user_name: 'func-dvexport',
  compatibility_level: 150,
  rcsi: true,
  updateability: 'READ_WRITE',
  schema_id: 1,
  create_table: 1,
  create_schema: 1,
  alter: 1,
  select: 1,
  insert: 1,
  update: 1,
  delete: 1,
};

describe('Azure SQL activation check', () => {
  it('passes a database with everything the sink relies on', () => {
    assert.deepEqual(judgeMssqlReadiness(ready, 'dbo'), { problems: [], warnings: [] });
  });

  it('names a compatibility level below 130 with the ALTER DATABASE that raises it', () => {
    const { problems } = judgeMssqlReadiness({ ...ready, compatibility_level: 120 }, 'dbo');
    assert.deepEqual(
      problems.map((p) => p.fix),
      ['ALTER DATABASE [sales] SET COMPATIBILITY_LEVEL = 130;'],
    );
    assert.match(problems[0].message, /compatibility level 120/);
  });

  it('names each missing right with the GRANT to the sign-in’s user', () => {
    const { problems } = judgeMssqlReadiness({ ...ready, create_table: 0, alter: 0, delete: 0 }, 'sales');
    assert.deepEqual(
      problems.map((p) => p.fix),
      ['GRANT CREATE TABLE TO [func-dvexport];', 'GRANT ALTER, DELETE ON SCHEMA::[sales] TO [func-dvexport];'],
    );
  });

  it('asks for the schema when it is missing and the sign-in may not create it', () => {
    const { problems } = judgeMssqlReadiness({ ...ready, schema_id: null, create_schema: 0, alter: null }, 'export');
    assert.deepEqual(
      problems.map((p) => p.fix),
      ['CREATE SCHEMA [export] AUTHORIZATION [func-dvexport];'],
    );
  });

  it('refuses a read-only database', () => {
    const { problems } = judgeMssqlReadiness({ ...ready, updateability: 'READ_ONLY' }, 'dbo');
    assert.match(problems[0].fix, /SET READ_WRITE/);
  });

  it('only warns when READ_COMMITTED_SNAPSHOT is off, with the statement that turns it on', () => {
    const { problems, warnings } = judgeMssqlReadiness({ ...ready, rcsi: false }, 'dbo');
    assert.deepEqual(problems, []);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /ALTER DATABASE \[sales\] SET READ_COMMITTED_SNAPSHOT ON;/);
  });

  it('quotes names holding a closing bracket', () => {
    const { problems } = judgeMssqlReadiness({ ...ready, user_name: 'odd]user', create_table: 0 }, 'dbo');
    assert.equal(problems[0].fix, 'GRANT CREATE TABLE TO [odd]]user];');
  });

  it('reads every column it judges in one batch, with the schema as a parameter', () => {
    for (const column of Object.keys(ready))
      assert.match(readinessSql, new RegExp(`\\[${column}\\]|d\\.\\[${column}\\]`));
    assert.match(readinessSql, /SCHEMA_ID\(@schema\)/);
    assert.doesNotMatch(readinessSql, /'dbo'/);
  });
});
