/**
 * T-SQL that widens an existing column (see ../column-widening.ts). ALTER COLUMN restates the whole type and
 * its NULL-ability, so the statement keeps what the column has (NULL or NOT NULL), and alters only if the
 * column is still of the type the applier read: a second applier widening the same column at once waits
 * for the schema lock, finds the type changed, and does nothing.
 */
import type { ColumnType } from '../table-model.js';
import { columnTypeSql, nameLiteral, qualified, quote, underSchemaLock } from './mssql-sql.js';

/** A predicate on `c` (sys.columns) and `ty` (sys.types): the column has type `type`. */
function hasType(type: ColumnType): string {
  switch (type.kind) {
    case 'text':
      // nvarchar(n) stores n two-byte units; nvarchar(max) shows max_length -1.
      return `ty.[name] = N'nvarchar' AND c.[max_length] = ${type.maxLength && type.maxLength <= 4000 ? type.maxLength * 2 : -1}`;
    case 'decimal':
      return `ty.[name] IN (N'decimal', N'numeric') AND c.[precision] = ${type.precision ?? 38} AND c.[scale] = ${type.scale ?? 0}`;
    default:
      return `ty.[name] = N'${columnTypeSql(type)}'`;
  }
}

/** @widened comes back as the last result set: 1 when the column was altered, 0 when it was no longer `from`. */
export function widenColumnSql(
  schema: string,
  table: string,
  column: string,
  from: ColumnType,
  to: ColumnType,
): string {
  const name = qualified(schema, table);
  const still = (nullable: 0 | 1) =>
    [
      'IF EXISTS (SELECT 1 FROM sys.columns AS c JOIN sys.types AS ty ON ty.[user_type_id] = c.[user_type_id]',
      `  WHERE c.[object_id] = OBJECT_ID(${nameLiteral(name)}, N'U') AND c.[name] = ${nameLiteral(column)} AND c.[is_nullable] = ${nullable} AND ${hasType(from)})`,
    ].join('\n');
  const alter = (nullability: string) => [
    'BEGIN',
    `  ALTER TABLE ${name} ALTER COLUMN ${quote(column)} ${columnTypeSql(to)} ${nullability};`,
    '  SET @widened = 1;',
    'END',
  ];
  return underSchemaLock(name, [
    'DECLARE @widened bit = 0;',
    still(1),
    ...alter('NULL'),
    `ELSE ${still(0)}`,
    ...alter('NOT NULL'),
    'SELECT @widened AS widened;',
  ]);
}
