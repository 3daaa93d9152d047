import { useState } from 'preact/hooks';
import { api, type EntityStatus, type Me } from './api.js';
import { ConfirmDialog } from './confirm-dialog.js';
import { FailureLog } from './failure-log.js';
import { count, eta, lag, when } from './format.js';
import { usePoll } from './use-poll.js';

type Pending = 'activate' | 'deactivate' | 'delete' | undefined;

export function ProfilePage({ me, id }: { me?: Me; id: string }) {
  const profile = usePoll(() => api.profile(id), 0, [id]);
  const status = usePoll(() => api.status(id), 2000, [id]);
  const [pending, setPending] = useState<Pending>();
  const [dropTables, setDropTables] = useState(false);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ kind: 'error' | 'ok'; text: string } | undefined>();
  const p = profile.value;

  async function act(kind: Exclude<Pending, undefined>) {
    setPending(undefined);
    setBusy(true);
    setMessage(undefined);
    try {
      if (kind === 'activate') await api.activate(id);
      if (kind === 'deactivate') await api.deactivate(id);
      if (kind === 'delete') {
        await api.remove(id, dropTables);
        window.location.hash = '#/';
        return;
      }
      setMessage({ kind: 'ok', text: kind === 'activate' ? 'Activated.' : 'Deactivated.' });
      profile.reload();
      status.reload();
    } catch (err) {
      setMessage({ kind: 'error', text: (err as Error).message });
    } finally {
      setBusy(false);
    }
  }

  if (profile.error)
    return (
      <p role="alert" class="error">
        {profile.error.message}
      </p>
    );
  if (!p) return <p>Loading…</p>;
  return (
    <section aria-labelledby="profile-title">
      <div class="title-row">
        <h1 id="profile-title" tabIndex={-1}>
          {p.name} <span class={`badge ${p.state.toLowerCase()}`}>{p.state}</span>
        </h1>
        {me?.canWrite && (
          <div class="actions">
            {p.state === 'Inactive' ? (
              <button type="button" class="primary" disabled={busy} onClick={() => setPending('activate')}>
                Activate
              </button>
            ) : (
              <button type="button" disabled={busy} onClick={() => setPending('deactivate')}>
                Deactivate
              </button>
            )}
            <a class="button" href={`#/profiles/${id}/edit`}>
              Edit
            </a>
            <button type="button" class="danger" disabled={busy} onClick={() => setPending('delete')}>
              Delete
            </button>
          </div>
        )}
      </div>
      <p class="meta">
        {p.source.url} → {p.target.kind} secret “{p.target.connectionSecret}”, schema {p.target.schema}
        {p.target.tablePrefix ? `, prefix ${p.target.tablePrefix}` : ''}
      </p>
      <div aria-live="polite">
        {message && (
          <p class={message.kind === 'error' ? 'error' : 'ok'} role={message.kind === 'error' ? 'alert' : 'status'}>
            {message.text}
          </p>
        )}
      </div>

      <h2>Entities</h2>
      <p class="meta" aria-live="off">
        Initial sync: <strong data-testid="overall-sync">{status.value?.initialSync ?? '—'}</strong> · refreshed{' '}
        {status.value ? new Date(status.value.asOf).toLocaleTimeString() : '—'}
      </p>
      <div class="table-wrap">
        <table class="grid">
          <caption class="visually-hidden">Status per entity</caption>
          <thead>
            <tr>
              <th scope="col">Entity</th>
              <th scope="col">Sync state</th>
              <th scope="col">Progress</th>
              <th scope="col">Rate / ETA</th>
              <th scope="col">Received</th>
              <th scope="col">Applied</th>
              <th scope="col">Stale</th>
              <th scope="col">Failed</th>
              <th scope="col">Last applied</th>
              <th scope="col">Lag</th>
            </tr>
          </thead>
          <tbody>
            {status.value?.entities.map((e) => (
              <EntityRow key={e.entity} status={e} />
            ))}
          </tbody>
        </table>
      </div>

      <FailureLog me={me} id={id} active={p.state === 'Active'} onResynced={status.reload} />

      {pending === 'activate' && (
        <ConfirmDialog
          title={`Activate “${p.name}”?`}
          confirmLabel="Activate"
          onConfirm={() => act('activate')}
          onCancel={() => setPending(undefined)}
        >
          <p>
            The target is checked, then {p.options.initialSync ? 'every entity is copied in full and ' : ''}changes flow
            continuously.
          </p>
        </ConfirmDialog>
      )}
      {pending === 'deactivate' && (
        <ConfirmDialog
          title={`Deactivate “${p.name}”?`}
          confirmLabel="Deactivate"
          onConfirm={() => act('deactivate')}
          onCancel={() => setPending(undefined)}
        >
          <p>The initial sync stops and changes no longer reach the target. The tables stay.</p>
        </ConfirmDialog>
      )}
      {pending === 'delete' && (
        <ConfirmDialog
          title={`Delete “${p.name}”?`}
          confirmLabel="Delete profile"
          danger
          onConfirm={() => act('delete')}
          onCancel={() => setPending(undefined)}
        >
          <p>The profile and its failure log are removed. Its audit trail stays.</p>
          <label class="check">
            <input type="checkbox" checked={dropTables} onChange={(e) => setDropTables(e.currentTarget.checked)} />
            Also drop its tables in the target database
          </label>
        </ConfirmDialog>
      )}
    </section>
  );
}

function EntityRow({ status: s }: { status: EntityStatus }) {
  const pct =
    s.syncState === 'Completed'
      ? 100
      : s.rowsEstimated
        ? Math.min(100, Math.round((100 * s.rowsCopied) / s.rowsEstimated))
        : 0;
  // A partitioned copy's rowsCopied is already the sum over its partitions; the count says how it is read.
  const partitions = s.partitions?.length ?? 0;
  const done = s.partitions?.filter((p) => p.done).length ?? 0;
  return (
    <tr data-entity={s.entity}>
      <th scope="row">{s.entity}</th>
      <td data-testid="sync-state">
        <span class={`badge ${s.syncState.toLowerCase()}`}>{s.syncState}</span>
        {s.lastError && <div class="error small">{s.lastError}</div>}
      </td>
      <td>
        <progress max={100} value={pct} aria-label={`${s.entity} copy progress`} />
        <div class="small">
          {count(s.rowsCopied)} / {count(s.rowsEstimated)}
          {partitions > 0 && (
            <span data-testid="partitions" title={`${done} of ${partitions} id ranges read`}>
              {' '}
              · {partitions} partitions
            </span>
          )}
        </div>
      </td>
      <td class="small">
        {s.rowsPerSecond === null ? '—' : `${s.rowsPerSecond.toLocaleString()} rows/s`}
        <br />
        {eta(s.etaSeconds)}
      </td>
      <td>{count(s.received)}</td>
      <td>{count(s.applied)}</td>
      <td>{count(s.stale)}</td>
      <td data-testid="failed">{count(s.failed)}</td>
      <td class="small">{when(s.lastAppliedAt)}</td>
      <td>{lag(s.lastLagMs)}</td>
    </tr>
  );
}
