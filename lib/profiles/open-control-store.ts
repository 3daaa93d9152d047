/** Opens the control store the settings name (`ControlStoreKind`, `ControlStoreConnection`). */
import type { ControlStoreKind } from '../config.js';
import type { Logger } from '../log.js';
import type { ControlStore } from './control-store.js';
import { openMssqlControlStore } from './mssql-control-store.js';
import { openPostgresControlStore } from './postgres-control-store.js';

export interface ControlStoreOptions {
  /** Schema of the control tables; default `dvexport`. */
  schema?: string;
  logger?: Logger;
  /** Accept `TrustServerCertificate=true` in an Azure SQL connection string (development only). */
  allowTrustServerCertificate?: boolean;
}

export function openControlStore(
  kind: ControlStoreKind,
  connectionString: string,
  options: ControlStoreOptions = {},
): Promise<ControlStore> {
  switch (kind) {
    case 'postgres':
      return openPostgresControlStore(connectionString, options);
    case 'mssql':
      return openMssqlControlStore(connectionString, options);
  }
}
