/** The management API as the console calls it: same origin, the platform's sign-in session, JSON errors. */

export interface ErrorDetail {
  field?: string;
  message: string;
  value?: unknown;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
  }
}

export interface Profile {
  id: string;
  name: string;
  organizationId: string;
  source: { url: string };
  target: { kind: 'postgres' | 'mssql'; connectionSecret: string; schema: string; tablePrefix: string };
  entities: string[];
  relationships: string[];
  options: { writeDeleteLog: boolean; retryCount: number; retryIntervalSeconds: number; initialSync: boolean };
  state: 'Inactive' | 'Active';
  createdOn: string;
  modifiedOn: string;
}

export type ProfileInput = Omit<Profile, 'id' | 'state' | 'createdOn' | 'modifiedOn'>;

export interface EntityStatus {
  entity: string;
  syncState: 'NotStarted' | 'Queued' | 'InProgress' | 'Completed' | 'Failed';
  rowsCopied: number;
  rowsEstimated: number | null;
  lastError: string | null;
  received: number;
  applied: number;
  stale: number;
  failed: number;
  lastAppliedAt: string | null;
  lastLagMs: number | null;
  rowsPerSecond: number | null;
  etaSeconds: number | null;
  /** Id ranges read in parallel; the entity's rowsCopied is their sum (empty: one read). */
  partitions?: Array<{ partition: number; rowsCopied: number; done: boolean }>;
}

export interface ProfileStatus {
  id: string;
  state: Profile['state'];
  initialSync: EntityStatus['syncState'];
  asOf: string;
  totals: { failed: number; lastAppliedAt: string | null; maxLagMs: number | null };
  entities: EntityStatus[];
}

export interface Failure {
  entity: string;
  recordId: string;
  changeType: string;
  time: string;
  reason: string;
  code: string;
}

export interface AuditEntry {
  id: string;
  at: string;
  actor: string;
  actorKind: string;
  action: string;
  profileId: string;
  profileName: string | null;
  before: Profile | null;
  after: Profile | null;
  details: Record<string, unknown> | null;
}

export interface Me {
  name: string;
  kind: 'principal' | 'functionKey';
  roles: string[];
  canRead: boolean;
  canWrite: boolean;
}

export interface Catalog {
  organizationId: string;
  entities: { logicalName: string; displayName: string; changeTracking: boolean }[];
  relationships: { schemaName: string; entity1: string; entity2: string }[];
}

/** The API sits one level above the console (`/api/admin/` → `/api/`). */
const base = new URL('../', window.location.href);

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(new URL(path, base), {
    method,
    headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  const json = text ? JSON.parse(text) : undefined;
  if (!response.ok) {
    throw new ApiError(
      response.status,
      json?.code ?? 'HTTP',
      json?.message ?? response.statusText,
      json?.details ?? [],
    );
  }
  return json as T;
}

const q = (params: Record<string, string | undefined>) => {
  const search = new URLSearchParams(Object.entries(params).filter(([, v]) => v) as [string, string][]).toString();
  return search ? `?${search}` : '';
};

export const api = {
  me: () => call<Me>('GET', 'me'),
  profiles: () => call<Profile[]>('GET', 'profiles'),
  profile: (id: string) => call<Profile>('GET', `profiles/${id}`),
  status: (id: string) => call<ProfileStatus>('GET', `profiles/${id}/status`),
  create: (input: ProfileInput) => call<Profile>('POST', 'profiles', input),
  replace: (id: string, input: ProfileInput) => call<Profile>('PUT', `profiles/${id}`, input),
  activate: (id: string) => call<Profile>('POST', `profiles/${id}/activate`),
  deactivate: (id: string) => call<Profile>('POST', `profiles/${id}/deactivate`),
  remove: (id: string, dropTables: boolean) =>
    call<void>('DELETE', `profiles/${id}${q({ dropTables: String(dropTables) })}`),
  failures: (id: string, from?: string, to?: string) =>
    call<Failure[]>('GET', `profiles/${id}/failures${q({ from, to })}`),
  failuresCsv: async (id: string, from?: string, to?: string): Promise<Blob> => {
    const response = await fetch(new URL(`profiles/${id}/failures${q({ from, to })}`, base), {
      headers: { accept: 'text/csv' },
      credentials: 'same-origin',
    });
    if (!response.ok) throw new ApiError(response.status, 'HTTP', `CSV download failed (${response.status})`);
    return response.blob();
  },
  /** Starts the resync (durable work) and follows its status URL until it ends; resolves with its totals. */
  resync: async (id: string, onProgress?: (totals: Record<string, unknown>) => void) => {
    const started = await call<{ statusQueryGetUri: string }>('POST', `profiles/${id}/failures/resync`);
    for (;;) {
      const response = await fetch(started.statusQueryGetUri, { credentials: 'same-origin' });
      const status = (await response.json()) as {
        runtimeStatus: string;
        customStatus?: Record<string, unknown>;
        output?: Record<string, unknown>;
      };
      if (status.runtimeStatus === 'Completed') return status.output ?? {};
      if (status.runtimeStatus === 'Failed' || status.runtimeStatus === 'Terminated') {
        throw new ApiError(500, 'RESYNC_FAILED', `The resync ${status.runtimeStatus.toLowerCase()}; try again.`, []);
      }
      if (status.customStatus) onProgress?.(status.customStatus);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  },
  audit: (params: { profileId?: string; from?: string; to?: string; offset?: number }) =>
    call<{ entries: AuditEntry[]; nextOffset: number | null }>(
      'GET',
      `audit${q({ profileId: params.profileId, from: params.from, to: params.to, offset: params.offset ? String(params.offset) : undefined })}`,
    ),
  catalog: (url: string) => call<Catalog>('GET', `organizations/catalog${q({ url })}`),
};
